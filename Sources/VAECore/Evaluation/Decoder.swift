import Foundation

/// Runs a model's decoder (`DecoderGraph`) at latent values the caller chooses: for pictures (the mean
/// of p(x|z), in the data's units) and for the importance-weighted bound (−log p(x|z) per example).
public final class Decoder {
    public let model: ModelSpec
    public let graph: DecoderGraph
    let parameters: ParameterStore
    let threads: Int
    private var executables: [String: BoundExecutable] = [:]

    public init(model: ModelSpec, parameters: ParameterStore, threads: Int = 1) throws {
        self.model = model
        self.parameters = parameters
        self.threads = threads
        graph = try DecoderGraph(model: model)
    }

    private func executable(_ output: String, batch: Int) throws -> BoundExecutable {
        let key = "\(output)/\(batch)"
        if let e = executables[key] { return e }
        let e = try BoundExecutable(graph: graph.graph, outputs: [output], batch: batch, threads: threads,
                                    parameters: parameters, leaves: [graph.latentLeaf, .input(model.input.name)])
        executables[key] = e
        return e
    }

    /// The mean of p(x|z) for each row of `z` (rows × latent features, row-major): rows × input features.
    public func means(_ z: [Float]) throws -> [Float] {
        let m = model.latent.featureCount, n = model.input.featureCount
        precondition(z.count % m == 0)
        let rows = z.count / m
        guard rows > 0 else { return [] }
        let e = try executable(DecoderGraph.decoderOutput, batch: rows)
        e.buffer(graph.latentLeaf)!.update(from: z, count: z.count)
        e.run()
        let raw = e.values(DecoderGraph.decoderOutput)
        precondition(raw.count == rows * n)
        return raw.map { model.likelihood.mean(ofDecoderOutput: $0) }
    }

    /// −log p(x_b | z_b) per row, in nats, summed over the features. `x` and `z` hold `rows` rows each.
    /// (For a likelihood whose σ is σ-VAE's batch optimum, the rows given form the batch.)
    public func negativeLogLikelihood(x: UnsafePointer<Float>, z: UnsafePointer<Float>, rows: Int,
                                      into result: UnsafeMutablePointer<Double>) throws {
        let e = try executable(DecoderGraph.negativeLogLikelihood, batch: rows)
        e.buffer(graph.latentLeaf)!.update(from: z, count: rows * model.latent.featureCount)
        if let input = e.buffer(.input(model.input.name)) { input.update(from: x, count: rows * model.input.featureCount) }
        e.run()
        let nll = e.values(DecoderGraph.negativeLogLikelihood)
        for b in 0..<rows { result[b] = Double(nll[b]) }
    }
}
