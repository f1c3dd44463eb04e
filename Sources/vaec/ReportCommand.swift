import Foundation
import VAECore

/// `vaec report`: writes the HTML report of a finished run (`RunReport` in VAECore/Report).
enum ReportCommand {
    static func run(_ words: ArraySlice<String>) throws {
        if words.contains("--help") { print(Help.commands["report"]!); return }
        let args = try Arguments(words, valued: ["--checkpoint", "--out", "--data", "--scale", "--iw", "--threads", "--seed"],
                                 flags: [])
        guard let checkpoint = args.options["--checkpoint"] else {
            throw UsageError("report needs a run's checkpoint: vaec report [MODEL.vae] --checkpoint runs/NAME/checkpoint.safetensors")
        }
        let runDirectory = (checkpoint as NSString).deletingLastPathComponent
        let out = args.options["--out"] ?? RunReport.directory(forRun: runDirectory.isEmpty ? "." : runDirectory)
        // Without a model on the command line, the compiled copy an earlier report saved is used.
        var words = Array(words)
        if args.positional.isEmpty {
            let saved = (RunReport.directory(forRun: runDirectory.isEmpty ? "." : runDirectory) as NSString)
                .appendingPathComponent(RunReport.programFileName)
            guard FileManager.default.fileExists(atPath: saved) else {
                throw UsageError("no model given and no \(saved) from an earlier report: vaec report MODEL.vae --checkpoint \(checkpoint)")
            }
            words.insert(saved, at: 0)
        }
        let full = try Arguments(words[...], valued: ["--checkpoint", "--out", "--data", "--scale", "--iw", "--threads", "--seed"], flags: [])
        let target = try InspectTarget(full, command: "report")
        let model = target.program.model
        var options = RunReport.Options(checkpoint: checkpoint)
        options.iwSamples = try args.integer("--iw", in: 0...1_000_000) ?? options.iwSamples
        options.threads = try args.integer("--threads", in: 1...64) ?? options.threads
        if let text = args.options["--seed"] {
            guard let v = UInt64(text) else { throw UsageError("--seed takes a whole number, not '\(text)'") }
            options.seed = v
        }
        let parameters = ParameterStore(specs: model.parameters)
        try Checkpoint.load(into: parameters, from: checkpoint)
        let history = try RunHistory.read(directory: runDirectory.isEmpty ? "." : runDirectory, model: model) ?? []
        let data = try EvalCommand.evaluationData(target, full)
        let written = try RunReport.write(program: target.program, parameters: parameters, history: history, data: data,
                                        to: out, options: options)
        print("report: \(written.index)")
    }
}
