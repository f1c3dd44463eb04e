import Foundation

/// Writes 8-bit PNG images with no dependency: the zlib stream holds the scanlines in stored
/// (uncompressed) deflate blocks, which every decoder reads. Pictures of a few hundred pixels a side
/// stay small enough that compression is not worth a deflate encoder.
///
/// Layout: the signature, IHDR, one IDAT, IEND; each chunk is length, type, data and the CRC-32 of type
/// and data. The zlib stream is the header 78 01, blocks of at most 65535 bytes (BFINAL on the last,
/// BTYPE 00, LEN, NLEN), then the Adler-32 of the uncompressed bytes, big-endian.
public enum PNGWriter {
    public enum ColorType: UInt8, Sendable {
        case gray = 0
        case rgb = 2
        var channels: Int { self == .gray ? 1 : 3 }
    }

    public static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// `pixels` holds `height` rows of `width` × channels bytes.
    public static func encode(width: Int, height: Int, color: ColorType, pixels: [UInt8]) -> [UInt8] {
        precondition(width >= 1 && height >= 1 && pixels.count == width * height * color.channels)
        let rowBytes = width * color.channels
        var raw: [UInt8] = []
        raw.reserveCapacity(height * (rowBytes + 1))
        for y in 0..<height {
            raw.append(0)   // filter type None
            raw.append(contentsOf: pixels[y * rowBytes..<(y + 1) * rowBytes])
        }
        var header: [UInt8] = []
        header.appendBigEndian(UInt32(width))
        header.appendBigEndian(UInt32(height))
        header += [8, color.rawValue, 0, 0, 0]   // bit depth, colour type, deflate, adaptive filters, no interlace
        var png = signature
        png += chunk("IHDR", header)
        png += chunk("IDAT", zlibStored(raw))
        png += chunk("IEND", [])
        return png
    }

    public static func write(width: Int, height: Int, color: ColorType, pixels: [UInt8], to path: String) throws {
        try AtomicFile.write(encode(width: width, height: height, color: color, pixels: pixels), to: path)
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.appendBigEndian(UInt32(data.count))
        let typed = Array(type.utf8) + data
        out += typed
        out.appendBigEndian(CRC32.checksum(typed))
        return out
    }

    /// A zlib stream of stored deflate blocks.
    static func zlibStored(_ data: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x78, 0x01]   // deflate, 32K window; FCHECK makes 0x7801 a multiple of 31
        let blockSize = 65_535
        var offset = 0
        repeat {
            let length = min(blockSize, data.count - offset)
            let final = offset + length == data.count
            out.append(final ? 1 : 0)
            out += [UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8((~length >> 8) & 0xFF)]
            out += data[offset..<offset + length]
            offset += length
        } while offset < data.count
        out.appendBigEndian(Adler32.checksum(data))
        return out
    }
}

fileprivate extension Array where Element == UInt8 {
    mutating func appendBigEndian(_ v: UInt32) {
        append(contentsOf: [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)])
    }
}
