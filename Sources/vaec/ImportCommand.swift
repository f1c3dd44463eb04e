import Foundation
import VAECore

/// `vaec import CHECKPOINT --model MODEL -o OUT`: parameters trained by an exported module (or any
/// safetensors file under vaec's names) checked against the model and written as a vaec checkpoint.
enum ImportCommand {
    static func run(_ words: ArraySlice<String>) throws {
        if words.contains("--help") { print(Help.commands["import"]!); return }
        let args = try Arguments(words, valued: ["--model", "-o", "--step", "--epoch"], flags: [])
        guard args.positional.count == 1, let path = args.positional.first else {
            throw UsageError("import takes one checkpoint: vaec import CHECKPOINT.safetensors --model MODEL.vae -o OUT.safetensors")
        }
        guard let modelPath = args.options["--model"] else {
            throw UsageError("import needs the model the parameters belong to: --model MODEL.vae")
        }
        guard let output = args.options["-o"] else { throw UsageError("import needs where to write: -o OUT.safetensors") }
        let model = try ExportCommand.compiledSource(modelPath).model
        let summary = try CheckpointImport.run(from: path, model: model, to: output,
                                               step: try args.integer("--step", in: 0...Int(Int32.max)),
                                               epoch: try args.integer("--epoch", in: 0...Int(Int32.max)))
        var notes: [String] = []
        if let prefix = summary.strippedPrefix { notes.append("removed the prefix '\(prefix)' from every name") }
        if summary.wasSealed { notes.append("its vaec checksum verified") }
        print("wrote \(output): \(summary.tensors) tensors (\(summary.values) values) of \(model.name) from \(path), step \(summary.step), epoch \(summary.epoch)"
              + (notes.isEmpty ? "" : "; " + notes.joined(separator: ", ")))
    }
}
