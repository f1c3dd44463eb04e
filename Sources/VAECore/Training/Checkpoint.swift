import Foundation

/// Checkpoints are safetensors files holding the parameters under their documented names in PyTorch's
/// layout (a linear layer's weight is [out, in]), so `model.load_state_dict(safetensors.torch.load_file(…))`
/// works on the equivalent nn.Module. The metadata records the model, the step and the epoch.
public enum Checkpoint {
    public static func save(_ parameters: ParameterStore, model: ModelSpec, epoch: Int, step: Int, to path: String) throws {
        var file = SafeTensors()
        for (index, spec) in parameters.specs.enumerated() {
            file.tensors[spec.name] = SafeTensors.Tensor(shape: spec.dims, values: parameters.values(index))
        }
        file.metadata = ["format": "vaec-checkpoint", "vaec_version": VAECVersion.current, "model": model.name,
                         "epoch": String(epoch), "step": String(step)]
        try file.write(to: path)
    }

    /// Loads parameters into a store, checking every name and shape against the model.
    public static func load(into parameters: ParameterStore, from path: String) throws -> [String: String] {
        let file = try SafeTensors.read(path: path)
        for (index, spec) in parameters.specs.enumerated() {
            guard let tensor = file.tensors[spec.name] else {
                throw FormatError(path: path, problem: "has no tensor '\(spec.name)', which the model needs (is it a checkpoint of another model?)")
            }
            guard tensor.shape == spec.dims else {
                throw FormatError(path: path, problem: "holds '\(spec.name)' with shape \(tensor.shape), but the model's is \(spec.dims)")
            }
            parameters.set(index, tensor.values)
        }
        return file.metadata
    }
}
