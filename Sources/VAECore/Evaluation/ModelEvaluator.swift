import Foundation

/// Evaluates a trained model on a data set: the ELBO's two terms (one posterior sample per example, as
/// training reports them), the KL per latent dimension, the active units and, on request, the
/// importance-weighted bound. Runs the compiled graph forward only, `chunk` examples at a time.
public final class ModelEvaluator {
    public let model: ModelSpec
    let graph: Graph
    public let parameters: ParameterStore
    public let threads: Int
    public let chunk: Int
    private var executables: [Int: BoundExecutable] = [:]
    private var cachedDecoder: Decoder?

    static let outputs = [OutputName.reconstruction, OutputName.kl, OutputName.klPerDimension,
                          OutputName.posteriorMean, OutputName.posteriorLogVariance]

    public init(program: CompiledProgram, parameters: ParameterStore, threads: Int = 1, chunk: Int = 500) {
        model = program.model
        graph = program.graph
        self.parameters = parameters
        self.threads = max(1, threads)
        self.chunk = max(1, chunk)
    }

    /// The decoder alone, sharing the parameters.
    public func decoder() throws -> Decoder {
        if let cachedDecoder { return cachedDecoder }
        let d = try Decoder(model: model, parameters: parameters, threads: threads)
        cachedDecoder = d
        return d
    }

    private func executable(batch: Int) throws -> BoundExecutable {
        if let e = executables[batch] { return e }
        let e = try BoundExecutable(graph: graph, outputs: Self.outputs, batch: batch, threads: threads, parameters: parameters,
                                    leaves: [.input(model.input.name), .noise(model.latent.name)])
        executables[batch] = e
        return e
    }

    /// Every figure of `EvaluationResult` on `data`; `iwSamples` = 0 skips the importance-weighted bound.
    /// The noise comes from generators seeded by `seed`, so a result is reproducible.
    public func evaluate(_ data: Dataset, iwSamples: Int = 0, seed: UInt64) throws -> EvaluationResult {
        guard data.features == model.input.featureCount else {
            throw VAECError.data("\(data.path) has \(data.features) values per example, but input '\(model.input.name)' has \(model.input.featureCount)")
        }
        guard data.count >= 1 else { throw VAECError.data("\(data.path) has no examples") }
        let m = model.latent.featureCount
        var random = RandomSource(seed: seed ^ 0xE7A1_5EED)
        var reconstruction = 0.0, kl = 0.0
        var klPerDimension = [Double](repeating: 0, count: m)
        var means = [Float](repeating: 0, count: data.count * m)
        var logVariances = [Float](repeating: 0, count: data.count * m)
        var first = 0
        while first < data.count {
            let rows = min(chunk, data.count - first)
            let e = try executable(batch: rows)
            if let input = e.buffer(.input(model.input.name)) { data.gather(Array(first..<first + rows)[...], into: input) }
            if let noise = e.buffer(.noise(model.latent.name)) { random.fillNormal(noise, count: rows * m) }
            e.run()
            reconstruction += Double(e.values(OutputName.reconstruction)[0])
            kl += Double(e.values(OutputName.kl)[0])
            for (j, v) in e.values(OutputName.klPerDimension).enumerated() { klPerDimension[j] += Double(v) }
            means.replaceSubrange(first * m..<(first + rows) * m, with: e.values(OutputName.posteriorMean))
            logVariances.replaceSubrange(first * m..<(first + rows) * m, with: e.values(OutputName.posteriorLogVariance))
            first += rows
        }
        let count = Double(data.count)
        let variances = ActiveUnits.variances(means: means, dims: m)
        var result = EvaluationResult(examples: data.count, features: model.input.featureCount,
                                      reconstruction: reconstruction / count, kl: kl / count,
                                      klPerDimension: klPerDimension.map { $0 / count },
                                      posteriorMeanVariance: variances, activeUnits: ActiveUnits.count(variances),
                                      iwBound: nil, iwSamples: iwSamples,
                                      posteriorMeans: means, posteriorLogVariances: logVariances)
        if iwSamples > 0 {
            let bounds = try ImportanceWeightedBound.perExample(decoder: try decoder(), data: data, means: means,
                                                                logVariances: logVariances, samples: iwSamples,
                                                                chunk: chunk, random: &random)
            result.iwBound = bounds.reduce(0, +) / count
        }
        return result
    }
}
