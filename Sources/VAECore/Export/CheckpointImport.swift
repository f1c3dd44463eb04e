import Foundation

/// `vaec import`: parameters trained elsewhere (a safetensors file from an exported module, PyTorch's
/// `save_file`, a DistributedDataParallel state_dict) checked against a model and written as a vaec
/// checkpoint in the current format, for `vaec eval`, `vaec report` and `vaec grad`.
public enum CheckpointImport {
    public struct Summary {
        public var tensors: Int
        public var values: Int
        /// A prefix removed from every name (`module.` of DistributedDataParallel, `_orig_mod.` of torch.compile).
        public var strippedPrefix: String?
        /// True when the file was already a sealed vaec checkpoint (its checksum was verified).
        public var wasSealed: Bool
        public var step: Int
        public var epoch: Int
    }

    /// Prefixes that wrappers put in front of every state_dict key.
    static let wrapperPrefixes = ["module.", "_orig_mod."]

    public static func run(from path: String, model: ModelSpec, to output: String, step: Int? = nil, epoch: Int? = nil) throws -> Summary {
        let bytes = try FormatFiles.readAll(path)
        var file: SafeTensors
        do {
            file = try SafeTensors.parse(bytes, path: path)
        } catch let error as FormatError where error.problem.contains("has dtype") {
            throw FormatError(path: path, problem: error.problem + " (save the parameters as float32, e.g. {k: v.float() for k, v in state_dict().items()})")
        }
        let sealed = file.metadata[SealedSafeTensors.formatKey] == Checkpoint.format
        if sealed {
            // A vaec checkpoint (or one the exported module wrote): hold it to vaec's own checks.
            file = try SealedSafeTensors.decode(bytes, path: path, format: Checkpoint.format, version: Checkpoint.formatVersion,
                                                what: "checkpoint")
        }
        var stripped: String?
        let known = Set(model.parameters.map(\.name))
        if !file.tensors.keys.contains(where: known.contains) {
            for prefix in wrapperPrefixes where !file.tensors.isEmpty && file.tensors.keys.allSatisfy({ $0.hasPrefix(prefix) }) {
                file.tensors = Dictionary(uniqueKeysWithValues: file.tensors.map { (String($0.key.dropFirst(prefix.count)), $0.value) })
                stripped = prefix
                break
            }
        }
        try check(file, model: model, path: path)
        let store = ParameterStore(specs: model.parameters)
        for (index, spec) in model.parameters.enumerated() { store.set(index, file.tensors[spec.name]!.values) }
        let resolvedStep = step ?? file.metadata["step"].flatMap { Int($0) } ?? 0
        let resolvedEpoch = epoch ?? file.metadata["epoch"].flatMap { Int($0) } ?? 0
        try Checkpoint.save(store, model: model, epoch: resolvedEpoch, step: resolvedStep, to: output)
        return Summary(tensors: file.tensors.count, values: store.totalCount, strippedPrefix: stripped, wasSealed: sealed,
                       step: resolvedStep, epoch: resolvedEpoch)
    }

    /// A guess at why a weight has the right values in another layout: vaec keeps PyTorch's layouts.
    static func layoutHint(_ shape: [Int], _ expected: [Int]) -> String {
        switch expected.count {
        case 2 where shape == expected.reversed():
            return " (transposed? vaec's weights are [out, in])"
        case 4 where shape == [expected[2], expected[3], expected[1], expected[0]]:
            return " (TensorFlow's [kh, kw, …] layout? vaec's convolution weights are PyTorch's: Conv2d [out, in, kh, kw], ConvTranspose2d [in, out, kh, kw])"
        case 4 where shape == [expected[1], expected[0], expected[2], expected[3]]:
            return " (a Conv2d weight for a ConvTranspose2d, or the reverse? Conv2d's is [out, in, kh, kw], ConvTranspose2d's [in, out, kh, kw])"
        default:
            return ""
        }
    }

    /// Every parameter with its shape and nothing else; all problems in one message.
    static func check(_ file: SafeTensors, model: ModelSpec, path: String) throws {
        var problems: [String] = []
        for spec in model.parameters {
            guard let tensor = file.tensors[spec.name] else {
                problems.append("has no tensor '\(spec.name)' \(spec.dims)")
                continue
            }
            if tensor.shape != spec.dims {
                problems.append("holds '\(spec.name)' with shape \(tensor.shape), but the model's is \(spec.dims)\(layoutHint(tensor.shape, spec.dims))")
            }
        }
        let known = Set(model.parameters.map(\.name))
        let extra = file.tensors.keys.filter { !known.contains($0) }.sorted()
        if !extra.isEmpty {
            problems.append("holds \(extra.count == 1 ? "a tensor" : "tensors") the model does not have: \(extra.prefix(5).map { "'\($0)'" }.joined(separator: ", "))\(extra.count > 5 ? ", …" : "")")
        }
        guard problems.isEmpty else {
            let shown = problems.prefix(8).joined(separator: "; ") + (problems.count > 8 ? "; and \(problems.count - 8) more" : "")
            throw FormatError(path: path, problem: "does not fit model '\(model.name)': \(shown)")
        }
    }
}
