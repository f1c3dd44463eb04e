import Foundation
import VAECore

/// `vaec eval`: the figures of a trained model on a data set (`ModelEvaluator` in VAECore/Evaluation).
enum EvalCommand {
    static func run(_ words: ArraySlice<String>) throws {
        if words.contains("--help") { print(Help.commands["eval"]!); return }
        let args = try Arguments(words, valued: ["--checkpoint", "--data", "--scale", "--iw", "--threads", "--seed"],
                                 flags: ["--json"])
        let target = try InspectTarget(args, command: "eval")
        let model = target.program.model
        guard let checkpoint = args.options["--checkpoint"] else {
            throw UsageError("eval needs the trained parameters: vaec eval \(target.path) --checkpoint DIR/checkpoint.safetensors")
        }
        let iw = try args.integer("--iw", in: 0...1_000_000) ?? 0
        let threads = try args.integer("--threads", in: 1...64) ?? 2
        var seed = model.train.seed
        if let text = args.options["--seed"] {
            guard let v = UInt64(text) else { throw UsageError("--seed takes a whole number, not '\(text)'") }
            seed = v
        }
        let data = try evaluationData(target, args)
        let parameters = ParameterStore(specs: model.parameters)
        let metadata = try Checkpoint.load(into: parameters, from: checkpoint)
        let evaluator = ModelEvaluator(program: target.program, parameters: parameters, threads: threads)
        let start = Date()
        let result = try evaluator.evaluate(data, iwSamples: iw, seed: seed)
        if args.flags.contains("--json") {
            print(result.json)
            return
        }
        let trained = metadata["epoch"].map { " (epoch \($0), step \(metadata["step"] ?? "?"))" } ?? ""
        print("\(model.name): parameters from \(checkpoint)\(trained)")
        print("data: \(data.count) examples of \(data.path); nats per example")
        print(result.summary)
        print(String(format: "evaluated in %.2f s", Date().timeIntervalSince(start)))
    }

    /// `--data FILE [--scale X]`, or the model's test set (its training set when it has none). The
    /// model's own data files are read with their train-block scale (`EvaluationPoint.dataset`).
    static func evaluationData(_ target: InspectTarget, _ args: Arguments) throws -> Dataset {
        let model = target.program.model
        var scale: Double?
        if let text = args.options["--scale"] {
            guard let v = Double(text), v > 0, v.isFinite else { throw UsageError("--scale takes a positive number, not '\(text)'") }
            scale = v
        }
        let directory = RunCommand.dataDirectory(for: target.path, program: target.program)
        if args.options["--data"] == nil, var test = model.train.test {
            if let scale { test.scale = scale }
            return try Dataset.load(test, relativeTo: directory, input: model.input)
        }
        return try EvaluationPoint.dataset(for: model, path: args.options["--data"], scale: scale, modelDirectory: directory)
    }
}
