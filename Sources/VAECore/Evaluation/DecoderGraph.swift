import Foundation

/// The decoder of a model on its own: the checked forward graph cut at the reparameterised sample
/// z = μ + σ·ε, whose node becomes an input leaf `.input(latent)`. Pictures (samples from the prior,
/// traversals, the 2-D grid) and the importance-weighted bound need p(x|z) at a z chosen by the caller,
/// which the training graph cannot take: it computes z from the encoder.
///
/// Outputs: `decoder_output` ([B, N], what `OutputName.decoderOutput` is in the full graph) and
/// `nll_per_example` ([B], −log p(x|z) summed over the features, in nats). The second reads the data
/// leaf `.input(input)`; the first does not, so decoding alone needs no data.
public struct DecoderGraph: Sendable {
    public static let negativeLogLikelihood = "nll_per_example"
    public static let decoderOutput = OutputName.decoderOutput

    public let graph: Graph
    /// The leaf the caller binds z to ([B, latent dims]).
    public let latentLeaf: Op

    public init(model: ModelSpec) throws {
        let source = model.graph
        let latent = model.latent
        guard let z = Self.sampleNode(in: source, latent: latent) else {
            throw VAECError.training("model '\(model.name)': cannot find the sample \(latent.name) = mean + sigma·eps in its graph, so its decoder cannot be run on its own")
        }
        guard let decoded = source.output(OutputName.decoderOutput), let reconstruction = source.output(OutputName.reconstruction) else {
            throw VAECError.training("model '\(model.name)': its graph has no '\(OutputName.decoderOutput)' or '\(OutputName.reconstruction)' output")
        }
        // The loss builder writes the reconstruction metric as Σ_batch(nll) with nll = Σ_features −log p:
        // the operand of that batch sum is the per-example value.
        guard source[reconstruction].op == .sumBatch else {
            throw VAECError.training("model '\(model.name)': its reconstruction output is not a sum over the batch of a per-example value")
        }
        let perExample = source[reconstruction].operands[0]

        // Live nodes of the two outputs, without following z's operands (the encoder).
        var live = [Bool](repeating: false, count: source.nodes.count)
        live[decoded] = true
        live[perExample] = true
        for id in stride(from: source.nodes.count - 1, through: 0, by: -1) where live[id] && id != z {
            for operand in source[id].operands { live[operand] = true }
        }
        var builder = GraphBuilder()
        var map = [ValueID](repeating: -1, count: source.nodes.count)
        latentLeaf = .input(latent.name)
        for (id, node) in source.nodes.enumerated() where live[id] {
            builder.currentLine = node.line
            if id == z {
                map[id] = builder.add(latentLeaf, name: latent.name, shape: Shape(batched: true, latent.dims))
            } else {
                map[id] = builder.add(node.op, node.operands.map { map[$0] }, name: node.name,
                                      shape: node.op.kind == .leaf ? node.shape : nil)
            }
        }
        builder.setOutput(Self.decoderOutput, map[decoded])
        builder.setOutput(Self.negativeLogLikelihood, map[perExample])
        var graph = builder.graph
        for pass in Compiler.passes { graph = pass.run(graph) }
        self.graph = graph
    }

    /// The node z = mean + sigma·eps of the checker: an `add` with a product of the latent's noise leaf.
    static func sampleNode(in graph: Graph, latent: LatentSpec) -> ValueID? {
        guard let noise = graph.nodes.firstIndex(where: { $0.op == .noise(latent.name) }) else { return nil }
        let scaled = Set(graph.nodes.indices.filter { graph[$0].op == .multiply && graph[$0].operands.contains(noise) })
        let shape = Shape(batched: true, latent.dims)
        let candidates = graph.nodes.indices.filter {
            graph[$0].op == .add && graph[$0].shape == shape && graph[$0].operands.contains(where: scaled.contains)
        }
        return candidates.first { graph[$0].name == latent.name } ?? candidates.first
    }
}
