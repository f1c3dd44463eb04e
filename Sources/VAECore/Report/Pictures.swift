import Foundation

/// One picture of a report: a file in the report's folder and the words around it.
public struct Picture: Sendable {
    public var file: String
    public var title: String
    public var caption: String
    /// Size in pixels of a PNG (0 for an SVG, which sizes itself).
    public var width = 0
    public var height = 0
    /// For a picture with one row of tiles per item (the traversals): a label per row, and where rows
    /// start and repeat in pixels, so the page can put each label beside its row.
    public var rowLabels: [String] = []
    public var firstRow = 0
    public var rowPitch = 0
    public var rowHeight = 0
}

/// The pictures of what a model learned, decoded by vaec itself: reconstructions beside their inputs,
/// samples from the prior, latent traversals and, for a 2-D latent, the decoded grid and the data's
/// posterior means coloured by label. Everything shown is the mean of p(x|z).
public struct Pictures {
    public let model: ModelSpec
    public let decoder: Decoder
    public let data: Dataset
    public let evaluation: EvaluationResult
    /// Height and width of one example drawn as an image.
    public let tileHeight: Int
    public let tileWidth: Int
    /// The data values drawn black and white: [0, 1], widened to the data's own range.
    public let range: (low: Float, high: Float)
    public var seed: UInt64 = 0

    public init(model: ModelSpec, decoder: Decoder, data: Dataset, evaluation: EvaluationResult) {
        self.model = model; self.decoder = decoder; self.data = data; self.evaluation = evaluation
        (tileHeight, tileWidth) = Self.imageShape(model.input.dims)
        let (lo, hi) = data.range
        range = (min(0, lo), max(1, hi))
    }

    /// An example's features as an image: an image input [C, H, W] as its C channels one above the
    /// other (H × W for one channel); otherwise the first axis as rows and the rest as columns; a
    /// vector of N = k² features as a k × k square (MNIST's 784 as 28 × 28); else the most square
    /// factorisation.
    public static func imageShape(_ dims: [Int]) -> (height: Int, width: Int) {
        if dims.count == 3 { return (dims[0] * dims[1], dims[2]) }
        if dims.count >= 2 { return (dims[0], dims.dropFirst().reduce(1, *)) }
        let n = dims.first ?? 1
        var height = Int(Double(n).squareRoot())
        while height > 1 && n % height != 0 { height -= 1 }
        return (height, n / height)
    }

    /// Writes every picture into `directory` and describes them, in the order a report shows them.
    public func write(to directory: String) throws -> [Picture] {
        var pictures = [try reconstructions(directory), try samples(directory), try traversals(directory)]
        if model.latent.featureCount == 2 {
            pictures.append(try latentGrid(directory))
            pictures.append(try scatter(directory))
        }
        return pictures
    }

    private func png(_ raster: Raster, _ name: String, in directory: String) throws {
        try AtomicFile.write(raster.png(), to: (directory as NSString).appendingPathComponent(name))
    }

    /// Example `index` of `values` (data rows or decoded means, both in the input's stored layout), in
    /// the order `imageShape` draws it: an image of several channels is stored channels-last, so its
    /// channels are gathered one after the other.
    private func tile(_ values: [Float], _ index: Int) -> ArraySlice<Float> {
        let n = tileHeight * tileWidth
        let stored = values[index * n..<(index + 1) * n]
        guard model.input.isImage, model.input.dims[0] > 1 else { return stored }
        let channels = model.input.dims[0], pixels = n / channels
        var planes = [Float](repeating: 0, count: n)
        for p in 0..<pixels { for c in 0..<channels { planes[c * pixels + p] = stored[stored.startIndex + p * channels + c] } }
        return planes[...]
    }

    /// Pairs of rows: examples of the data, then their reconstructions decoded at the posterior mean.
    /// The examples are spread evenly over the data set (data files are often sorted by label).
    func reconstructions(_ directory: String) throws -> Picture {
        let columns = min(10, data.count), pairs = min(2, (data.count + columns - 1) / columns)
        let count = min(data.count, columns * pairs)
        let m = model.latent.featureCount
        let chosen = (0..<count).map { $0 * data.count / count }
        let decoded = try decoder.means(chosen.flatMap { evaluation.posteriorMeans[$0 * m..<($0 + 1) * m] })
        let inputs = chosen.flatMap { data.row($0) }
        var tiles: [[ArraySlice<Float>]] = []
        for pair in 0..<pairs {
            let indices = (pair * columns)..<min(count, (pair + 1) * columns)
            tiles.append(indices.map { tile(inputs, $0) })
            tiles.append(indices.map { tile(decoded, $0) })
        }
        let grid = TileGrid(columns: columns, rows: tiles.count, tileWidth: tileWidth, tileHeight: tileHeight)
        try png(grid.render(tiles, range: range), "reconstructions.png", in: directory)
        let spread = count < data.count ? "\(count) examples spread evenly over" : "The \(count) examples of"
        return Picture(file: "reconstructions.png", title: "Reconstructions",
                       caption: "\(spread) \((data.path as NSString).lastPathComponent) (rows 1 and 3) and their reconstructions (rows 2 and 4): the mean of p(x|z) at z = the posterior mean.",
                       width: grid.width, height: grid.height)
    }

    /// The decoded mean of 64 draws from the prior.
    func samples(_ directory: String) throws -> Picture {
        let count = 64, m = model.latent.featureCount
        var random = RandomSource(seed: seed ^ 0x5A3B_1E5)
        let z = model.latent.prior.draw(count: count, dimensions: m, random: &random, parameters: decoder.parameters)
        let decoded = try decoder.means(z)
        let grid = TileGrid(columns: 8, rows: 8, tileWidth: tileWidth, tileHeight: tileHeight)
        let tiles = (0..<8).map { r in (0..<8).map { c in tile(decoded, r * 8 + c) } }
        try png(grid.render(tiles, range: range), "samples.png", in: directory)
        return Picture(file: "samples.png", title: "Samples from the prior",
                       caption: "The mean of p(x|z) for 64 draws z ~ p(z) = \(RunReport.priorText(model.latent.prior)).",
                       width: grid.width, height: grid.height)
    }

    /// One row per latent dimension: that dimension swept over ±3 prior standard deviations around the
    /// posterior mean of the data's first example, the others held at that mean.
    func traversals(_ directory: String) throws -> Picture {
        let std = model.latent.prior.pictureCentreAndSpread.std
        let m = model.latent.featureCount, steps = 11
        let base = Array(evaluation.posteriorMeans[0..<m])
        var z: [Float] = []
        for j in 0..<m {
            for s in 0..<steps {
                var point = base
                point[j] += Float(std * (-3 + 6 * Double(s) / Double(steps - 1)))
                z += point
            }
        }
        let decoded = try decoder.means(z)
        let grid = TileGrid(columns: steps, rows: m, tileWidth: tileWidth, tileHeight: tileHeight)
        let tiles = (0..<m).map { j in (0..<steps).map { s in tile(decoded, j * steps + s) } }
        try png(grid.render(tiles, range: range), "traversals.png", in: directory)
        let labels = (0..<m).map { j in
            String(format: "z%d  KL %.2f%@", j + 1, evaluation.klPerDimension[j],
                   evaluation.posteriorMeanVariance[j] > ActiveUnits.threshold ? "" : "  (inactive)")
        }
        return Picture(file: "traversals.png", title: "Latent traversals",
                       caption: "Row j: z_j swept from −3σ to +3σ (σ = \(WeightingReport.format(std)), the prior's) around the posterior mean of the first example, the other dimensions held there. Rows of inactive dimensions do not change.",
                       width: grid.width, height: grid.height, rowLabels: labels, firstRow: grid.gap, rowPitch: grid.rowPitch, rowHeight: tileHeight)
    }

    /// For a 2-D latent: the decoded mean over a 15 × 15 grid spanning ±3σ of the prior in each dimension.
    func latentGrid(_ directory: String) throws -> Picture {
        let (mean, std) = model.latent.prior.pictureCentreAndSpread
        let side = 15
        func coordinate(_ i: Int) -> Float { Float(mean + std * (-3 + 6 * Double(i) / Double(side - 1))) }
        var z: [Float] = []
        for row in 0..<side { for column in 0..<side { z += [coordinate(column), coordinate(side - 1 - row)] } }
        let decoded = try decoder.means(z)
        let grid = TileGrid(columns: side, rows: side, tileWidth: tileWidth, tileHeight: tileHeight, gap: 1)
        let tiles = (0..<side).map { r in (0..<side).map { c in tile(decoded, r * side + c) } }
        try png(grid.render(tiles, range: range), "latent-grid.png", in: directory)
        return Picture(file: "latent-grid.png", title: "The 2-D latent space, decoded",
                       caption: "The mean of p(x|z) on a 15 × 15 grid: z₁ from left to right and z₂ from bottom to top, each over ±3σ of the prior.",
                       width: grid.width, height: grid.height)
    }

    /// For a 2-D latent: the posterior mean of every example, coloured by its label when the data has a
    /// labels file beside it.
    func scatter(_ directory: String) throws -> Picture {
        let (labels, note) = Labels.forData(data)
        let means = evaluation.posteriorMeans
        var groups: [Int: [(x: Double, y: Double)]] = [:]
        for i in 0..<data.count {
            groups[labels?[i] ?? -1, default: []].append((Double(means[2 * i]), Double(means[2 * i + 1])))
        }
        let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
        var chart = SVGChart(title: "Posterior means of \((data.path as NSString).lastPathComponent)", xLabel: "z₁", yLabel: "z₂")
        chart.width = 560; chart.height = 520
        for (index, key) in groups.keys.sorted().enumerated() {
            var series = SVGChart.Series(name: key < 0 ? "examples" : "label \(key)", points: groups[key]!,
                                         color: palette[index % palette.count])
            series.lines = false
            series.markerRadius = 1.6
            chart.series.append(series)
        }
        try AtomicFile.write(Array(chart.render().utf8), to: (directory as NSString).appendingPathComponent("latent-scatter.svg"))
        var caption = "E_q[z|x] for the \(data.count) examples"
        if let labels { caption += ", coloured by the \(Set(labels).count) labels of \((Labels.file(nextTo: data.path)! as NSString).lastPathComponent)." }
        else { caption += note.map { ". The labels could not be used: \($0)" } ?? " (no labels file beside the data)." }
        return Picture(file: "latent-scatter.svg", title: "Where the data lands in the latent space", caption: caption)
    }
}
