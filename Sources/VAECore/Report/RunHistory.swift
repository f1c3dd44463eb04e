import Foundation

/// The epoch reports of a finished run, read back from the training state that `vaec run` keeps beside
/// its checkpoint (`TrainingState`), so `vaec report` can draw the curves of a run after the fact.
public enum RunHistory {
    /// The reports in `directory`'s training-state file; nil when there is no such file. A state file of
    /// another model is refused.
    public static func read(directory: String, model: ModelSpec) throws -> [EpochReport]? {
        let path = (directory as NSString).appendingPathComponent(TrainingState.fileName)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let file = try SealedSafeTensors.read(path: path, format: TrainingState.format, version: TrainingState.formatVersion,
                                              what: "training state")
        let hash = ModelIdentity.hash(model)
        guard file.metadata["model_hash"] == hash else {
            throw FormatError(path: path, problem: "belongs to another model ('\(file.metadata["model"] ?? "?")', fingerprint \(file.metadata["model_hash"] ?? "none")) than \(model.sourcePath) ('\(model.name)', fingerprint \(hash))")
        }
        guard let text = file.metadata["history"] else {
            throw FormatError(path: path, problem: "has no 'history' entry in its metadata")
        }
        var reports: [EpochReport] = []
        for part in text.split(separator: ";") {
            guard let report = Exact.report(String(part)) else {
                throw FormatError(path: path, problem: "has a malformed epoch report in its 'history' entry")
            }
            reports.append(report)
        }
        return reports
    }
}
