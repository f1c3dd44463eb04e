import Foundation

/// Checkpoints are safetensors files holding the parameters under their documented names in PyTorch's
/// layout (a linear layer's weight is [out, in]), so `model.load_state_dict(safetensors.torch.load_file(…))`
/// works on the equivalent nn.Module. The metadata records the model, the step and the epoch, plus the
/// format version and checksum of `SealedSafeTensors`. Only parameters live here: what a resumed run
/// needs beyond them (optimizer moments, random state, …) is in `TrainingState`'s file beside it.
public enum Checkpoint {
    public static let fileName = "checkpoint.safetensors"
    public static let format = "vaec-checkpoint"
    public static let formatVersion = 1

    public static func save(_ parameters: ParameterStore, model: ModelSpec, epoch: Int, step: Int, to path: String) throws {
        var file = SafeTensors()
        for (index, spec) in parameters.specs.enumerated() {
            file.tensors[spec.name] = SafeTensors.Tensor(shape: spec.dims, values: parameters.values(index))
        }
        file.metadata = ["vaec_version": VAECVersion.current, "model": model.name,
                         "model_hash": ModelIdentity.hash(model), "epoch": String(epoch), "step": String(step)]
        try SealedSafeTensors.write(file, format: format, version: formatVersion, to: path)
    }

    /// Loads parameters into a store, checking version, checksum, and every name and shape against the
    /// model. Nothing is written into the store unless the whole file is valid.
    @discardableResult
    public static func load(into parameters: ParameterStore, from path: String) throws -> [String: String] {
        let file = try SealedSafeTensors.read(path: path, format: format, version: formatVersion, what: "checkpoint")
        try check(file, against: parameters.specs, path: path)
        for (index, spec) in parameters.specs.enumerated() { parameters.set(index, file.tensors[spec.name]!.values) }
        return file.metadata
    }

    /// Every tensor the model needs, with its shape, and nothing else.
    static func check(_ file: SafeTensors, against specs: [ParameterSpec], path: String) throws {
        for spec in specs {
            guard let tensor = file.tensors[spec.name] else {
                throw FormatError(path: path, problem: "has no tensor '\(spec.name)', which the model needs (is it a checkpoint of another model?)")
            }
            guard tensor.shape == spec.dims else {
                throw FormatError(path: path, problem: "holds '\(spec.name)' with shape \(tensor.shape), but the model's is \(spec.dims)")
            }
        }
        let known = Set(specs.map(\.name))
        if let extra = file.tensors.keys.sorted().first(where: { !known.contains($0) }) {
            throw FormatError(path: path, problem: "holds a tensor '\(extra)' that the model does not have (is it a checkpoint of another model?)")
        }
    }
}
