import Foundation

/// A fingerprint of what a model computes and how it trains, stored in checkpoints so `--resume` can
/// refuse a checkpoint of another model. It covers the input, latent, likelihood, parameters,
/// objective, training recipe and the checked graph's ops, operands and shapes; it leaves out what
/// may change without changing a single bit of the run: the source's comments and layout (node lines
/// and names, the source text and path), where the data files are (a moved or copied project resumes;
/// a data set of another size is caught by the step count) and the epoch count (`--epochs` extends a run).
public enum ModelIdentity {
    public static func hash(_ model: ModelSpec) -> String {
        struct Fingerprint: Encodable {
            var input: InputSpec
            var latent: LatentSpec
            var likelihood: Likelihood
            var parameters: [ParameterSpec]
            var objective: ObjectiveSpec
            var train: TrainSpec
            var nodes: [NodeShape]
        }
        struct NodeShape: Encodable { var op: Op; var operands: [ValueID]; var shape: Shape }
        var train = model.train
        train.epochs = 0
        train.data?.path = ""
        train.test?.path = ""
        let fingerprint = Fingerprint(input: model.input, latent: model.latent, likelihood: model.likelihood,
                                      parameters: model.parameters, objective: model.objective, train: train,
                                      nodes: model.graph.nodes.map { NodeShape(op: $0.op, operands: $0.operands, shape: $0.shape) })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding plain Codable values cannot fail; an empty fingerprint would only make resumes stricter.
        let bytes = (try? encoder.encode(fingerprint)).map { [UInt8]($0) } ?? []
        return fnv1a(bytes)
    }

    /// 64-bit FNV-1a as 16 hex digits: not cryptographic, only to tell models apart.
    static func fnv1a(_ bytes: [UInt8]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        let digits = String(h, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
