import Foundation
import VAECore

enum RunCommand {
    static func run(_ words: ArraySlice<String>) throws {
        if words.contains("--help") { print(Help.commands["run"]!); return }
        let args = try Arguments(words, valued: ["--epochs", "--threads", "--out"], flags: [])
        guard args.positional.count == 1, let path = args.positional.first else {
            throw UsageError("run takes one model: vaec run MODEL.vae (or PROGRAM.vaek)")
        }
        let program: CompiledProgram
        if path.hasSuffix(".vaek") {
            program = try CompiledProgram.read(path: path)
        } else {
            let result = try Compiler.compile(path: path)
            for warning in result.warnings { print("warning: \(warning)") }
            program = result.program
        }
        let model = program.model
        var options = TrainOptions()
        options.threads = try args.integer("--threads", in: 1...64) ?? 2
        options.epochs = try args.integer("--epochs", in: 0...1_000_000)

        let directory = dataDirectory(for: path, program: program)
        guard let trainSource = model.train.data else {
            throw UsageError("\(path) has no training data: add 'data: idx(\"…\")' to its train block")
        }
        let train = try Dataset.load(trainSource, relativeTo: directory, input: model.input)
        let test = try model.train.test.map { try Dataset.load($0, relativeTo: directory, input: model.input) }
        for data in [train] + (test.map { [$0] } ?? []) {
            if let note = try data.check(against: model.likelihood) { print(note) }
        }
        print("objective: \(WeightingReport.summary(model))")
        let trainer = try Trainer(program: program, train: train, test: test, options: options)
        print("training \(model.name): \(train.count) examples, batch \(model.train.batch), \(trainer.epochs) epochs, \(trainer.parameters.totalCount) parameters, \(options.threads) thread\(options.threads == 1 ? "" : "s")")
        let start = Date()
        try trainer.run { report in
            print(format(report, of: trainer.epochs))
            return true
        }
        let outDirectory = args.options["--out"] ?? "runs/\(model.name)"
        let checkpoint = (outDirectory as NSString).appendingPathComponent("checkpoint.safetensors")
        try Checkpoint.save(trainer.parameters, model: model, epoch: trainer.epoch, step: trainer.step, to: checkpoint)
        print(String(format: "done in %.2f s; checkpoint: %@", Date().timeIntervalSince(start), checkpoint))
    }

    static func format(_ r: EpochReport, of epochs: Int) -> String {
        let width = String(epochs).count
        var line = String(format: "epoch %\(width)d/%d  train -ELBO %.2f (recon %.2f, KL %.2f)", r.epoch, epochs,
                          r.trainELBO, r.trainReconstruction, r.trainKL)
        if let elbo = r.testELBO, let rec = r.testReconstruction, let kl = r.testKL {
            line += String(format: "  test -ELBO %.2f (recon %.2f, KL %.2f)", elbo, rec, kl)
        }
        line += String(format: "  beta %g  %.2f s", r.beta, r.seconds)
        return line
    }

    /// Data paths in a model file are relative to the model file; for a .vaek, to the .vaek's folder
    /// when the data is there, else to the folder of the .vae it was compiled from.
    static func dataDirectory(for path: String, program: CompiledProgram) -> String {
        let own = (path as NSString).deletingLastPathComponent
        guard path.hasSuffix(".vaek"), let data = program.model.train.data else { return own.isEmpty ? "." : own }
        let candidates = [own.isEmpty ? "." : own, (program.model.sourcePath as NSString).deletingLastPathComponent]
        return candidates.first { FileManager.default.fileExists(atPath: ($0 as NSString).appendingPathComponent(data.path)) } ?? candidates[0]
    }
}
