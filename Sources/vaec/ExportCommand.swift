import Foundation
import VAECore

/// `vaec export MODEL --to pytorch|jax [-o FILE.py]`: the model as a Python module (VAECore/Export).
enum ExportCommand {
    static func run(_ words: ArraySlice<String>) throws {
        if words.contains("--help") { print(Help.commands["export"]!); return }
        let args = try Arguments(words, valued: ["--to", "-o"], flags: [])
        guard args.positional.count == 1, let path = args.positional.first else {
            throw UsageError("export takes one model: vaec export MODEL.vae --to pytorch|jax -o model.py")
        }
        let targets = ExportTarget.allCases.map(\.rawValue).joined(separator: ", ")
        guard let name = args.options["--to"] else { throw UsageError("export needs a target: --to \(targets)") }
        guard let target = ExportTarget(rawValue: name.lowercased()) else {
            throw UsageError("unknown export target '\(name)'; vaec exports to \(targets)")
        }
        let result = try compiledSource(path)
        let output = args.options["-o"]
            ?? ((path as NSString).lastPathComponent as NSString).deletingPathExtension + "_\(target.rawValue).py"
        let text = try Exporter.module(result, target: target, modelDirectory: (path as NSString).deletingLastPathComponent)
        try AtomicFile.write(Array(text.utf8), to: output)
        print("wrote \(output): \(result.model.name) for \(target == .pytorch ? "PyTorch" : "JAX"), \(result.model.parameters.count) parameter tensors, \(text.split(separator: "\n", omittingEmptySubsequences: false).count) lines")
    }

    /// The model file compiled, with its syntax tree: a .vae directly, a .vaek from the source it stores.
    static func compiledSource(_ path: String) throws -> Compiler.Result {
        guard path.hasSuffix(".vaek") else { return try Compiler.compile(path: path) }
        let program = try CompiledProgram.read(path: path)
        return try Compiler.compile(source: SourceFile(path: program.model.sourcePath, text: program.model.sourceText))
    }
}
