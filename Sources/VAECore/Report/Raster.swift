/// A canvas of 8-bit pixels (gray or RGB) that pictures are composed on before `PNGWriter` writes them,
/// with the layout of a grid of equal tiles separated by gaps.
public struct Raster: Sendable {
    public let width: Int
    public let height: Int
    public let color: PNGWriter.ColorType
    public private(set) var pixels: [UInt8]

    public init(width: Int, height: Int, color: PNGWriter.ColorType = .gray, background: UInt8 = 255) {
        self.width = width; self.height = height; self.color = color
        pixels = [UInt8](repeating: background, count: width * height * color.channels)
    }

    public subscript(x: Int, y: Int) -> UInt8 {
        get { pixels[(y * width + x) * color.channels] }
    }

    /// Draws `values` (tileHeight rows of tileWidth) with its top-left corner at (x, y), mapping `range`
    /// linearly onto black…white (values outside are clipped; NaN is drawn mid-grey).
    public mutating func drawTile(_ values: ArraySlice<Float>, x: Int, y: Int, tileWidth: Int, tileHeight: Int,
                                  range: (low: Float, high: Float)) {
        precondition(values.count == tileWidth * tileHeight)
        let span = range.high > range.low ? range.high - range.low : 1
        var i = values.startIndex
        for row in 0..<tileHeight {
            for column in 0..<tileWidth {
                let v = values[i]
                i += 1
                let level: UInt8 = v.isNaN ? 128 : UInt8((min(max((v - range.low) / span, 0), 1) * 255).rounded())
                let offset = ((y + row) * width + x + column) * color.channels
                for c in 0..<color.channels { pixels[offset + c] = level }
            }
        }
    }

    public func png() -> [UInt8] { PNGWriter.encode(width: width, height: height, color: color, pixels: pixels) }
}

/// How tiles are laid out: `columns` × `rows` tiles of tileWidth × tileHeight with `gap` pixels
/// between them (and around), so the browser's pixelated upscaling keeps examples apart.
public struct TileGrid: Sendable {
    public var columns: Int
    public var rows: Int
    public var tileWidth: Int
    public var tileHeight: Int
    public var gap = 2

    public var width: Int { columns * (tileWidth + gap) + gap }
    public var height: Int { rows * (tileHeight + gap) + gap }
    /// Pixels from one row of tiles to the next.
    public var rowPitch: Int { tileHeight + gap }

    public func origin(column: Int, row: Int) -> (x: Int, y: Int) {
        (gap + column * (tileWidth + gap), gap + row * (tileHeight + gap))
    }

    /// A raster with `tiles[r][c]` (each tileWidth × tileHeight values) drawn on a light background.
    public func render(_ tiles: [[ArraySlice<Float>]], range: (low: Float, high: Float)) -> Raster {
        var raster = Raster(width: width, height: height, background: 230)
        for (r, row) in tiles.enumerated() {
            for (c, tile) in row.enumerated() {
                let (x, y) = origin(column: c, row: r)
                raster.drawTile(tile, x: x, y: y, tileWidth: tileWidth, tileHeight: tileHeight, range: range)
            }
        }
        return raster
    }
}
