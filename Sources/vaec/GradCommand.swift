import Foundation
import VAECore

/// `vaec grad`: evaluates the compiled gradient on real data (the logic is `GradientReport`,
/// `GraphEvaluator.trace` and `EvaluationPoint` in VAECore/Inspect).
enum GradCommand {
    static func run(_ words: ArraySlice<String>) throws {
        if words.contains("--help") { print(Help.commands["grad"]!); return }
        let args = try Arguments(words, valued: ["--checkpoint", "--data", "--scale", "--rows", "--noise", "--out"],
                                 flags: ["--values"])
        let target = try InspectTarget(args, command: "grad")
        let point = try target.point(args)
        print("\(target.program.model.name): \(point.provenance)")
        if args.flags.contains("--values") {
            let evaluator = try GraphEvaluator(graph: target.program.graph, point: point,
                                               outputs: [OutputName.loss] + GraphEvaluator.gradientOutputs(of: point.model))
            print(evaluator.trace().render(), terminator: "")
        }
        guard !args.flags.contains("--values") || args.options["--out"] != nil else { return }
        let report = try GradientReport.evaluate(graph: target.program.graph, point: point)
        if !args.flags.contains("--values") {
            print(report.summary)
            print(report.table)
        }
        if let out = args.options["--out"] {
            try report.write(to: out)
            print("wrote the gradients of \(report.gradients.count) parameter tensors to \(out)")
        }
    }
}

/// What `vaec grad` and `vaec check` share: the model (compiled from a .vae or read from a .vaek) and
/// the options that choose where to evaluate it.
struct InspectTarget {
    let path: String
    let program: CompiledProgram

    init(_ args: Arguments, command: String) throws {
        guard args.positional.count == 1, let path = args.positional.first else {
            throw UsageError("\(command) takes one model: vaec \(command) MODEL.vae (or PROGRAM.vaek)")
        }
        self.path = path
        if path.hasSuffix(".vaek") {
            program = try CompiledProgram.read(path: path)
        } else {
            let result = try Compiler.compile(path: path)
            program = result.program
        }
    }

    /// `--data FILE [--scale X]` or the model's training data; `nil` when the model has no data file (or
    /// it is missing) and `syntheticFallback` allows going on without it.
    func dataset(_ args: Arguments, syntheticFallback: Bool = false) throws -> Dataset? {
        var scale: Double?
        if let text = args.options["--scale"] {
            guard let v = Double(text), v > 0, v.isFinite else { throw UsageError("--scale takes a positive number, not '\(text)'") }
            scale = v
        }
        let directory = RunCommand.dataDirectory(for: path, program: program)
        if args.options["--data"] == nil, syntheticFallback {
            guard let own = program.model.train.data else { return nil }
            let file = own.path.hasPrefix("/") ? own.path : (directory as NSString).appendingPathComponent(own.path)
            if !FileManager.default.fileExists(atPath: file) { return nil }
        }
        return try EvaluationPoint.dataset(for: program.model, path: args.options["--data"], scale: scale, modelDirectory: directory)
    }

    /// `--rows A:B` (half-open, as Python's slice).
    func rows(_ args: Arguments) throws -> Range<Int>? {
        guard let text = args.options["--rows"] else { return nil }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let a = Int(parts[0]), let b = Int(parts[1]), a >= 0, b > a else {
            throw UsageError("--rows takes A:B with 0 ≤ A < B (rows A to B−1), not '\(text)'")
        }
        return a..<b
    }

    /// `--noise zero`, `--noise SEED` or `--noise FILE.npy` (rows × latent features; default: the model's training seed).
    func noise(_ args: Arguments) throws -> EvaluationPoint.Noise {
        guard let text = args.options["--noise"] else { return .seeded(program.model.train.seed) }
        if text == "zero" { return .zero }
        if text.hasSuffix(".npy") {
            let file = try NPYFile.read(path: text)
            let latents = program.model.latent.featureCount
            guard file.dims.count == 2, file.dims[1] == latents else {
                throw UsageError("\(text) holds noise of shape \(file.dims), but ε is [rows, \(latents)]")
            }
            return .values(file.values, source: text)
        }
        guard let seed = UInt64(text) else { throw UsageError("--noise takes 'zero', a seed (a whole number) or FILE.npy, not '\(text)'") }
        return .seeded(seed)
    }

    func point(_ args: Arguments, syntheticFallback: Bool = false) throws -> EvaluationPoint {
        let model = program.model
        let rows = try rows(args)
        let data = try dataset(args, syntheticFallback: syntheticFallback)
            ?? EvaluationPoint.syntheticDataset(for: model, rows: rows?.upperBound ?? model.train.batch, seed: model.train.seed)
        return try EvaluationPoint.load(model: model, checkpoint: args.options["--checkpoint"], data: data, rows: rows,
                                        noise: try noise(args))
    }
}
