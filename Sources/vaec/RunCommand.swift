import Foundation
import VAECore

enum RunCommand {
    static func run(_ words: ArraySlice<String>) throws {
        if words.contains("--help") { print(Help.commands["run"]!); return }
        let (rest, resume) = try resumeOption(words)
        let args = try Arguments(rest, valued: ["--epochs", "--threads", "--out", "--checkpoint-every", "--report", "--iw"],
                                 flags: ["--no-report"])
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
        let checkpointEvery = try args.integer("--checkpoint-every", in: 1...1_000_000_000)

        let directory = dataDirectory(for: path, program: program)
        guard let trainSource = model.train.data else {
            throw UsageError("\(path) has no training data: add 'data: idx(\"…\")' to its train block")
        }
        let train = try Dataset.load(trainSource, relativeTo: directory, input: model.input)
        let test = try model.train.test.map { try Dataset.load($0, relativeTo: directory, input: model.input) }
        // Both files are checked against the likelihood's support; the note about grey values is
        // said once, of the training data.
        let notes = try ([train] + (test.map { [$0] } ?? [])).map { try $0.check(against: model.likelihood) }
        if let note = notes.first ?? nil, model.train.binarize == .none { print(note) }
        let trainer = try Trainer(program: program, train: train, test: test, options: options)
        let outDirectory = args.options["--out"] ?? resume.map { $0 ?? "runs/\(model.name)" } ?? "runs/\(model.name)"
        let checkpoint = (outDirectory as NSString).appendingPathComponent(Checkpoint.fileName)
        /// The newest checkpoint on disk that holds good parameters, for the messages.
        var kept: (path: String, epoch: Int, step: Int)?
        if let resume {
            let from = resume ?? outDirectory
            try TrainingState.resume(trainer, from: from)
            kept = ((from as NSString).appendingPathComponent(Checkpoint.fileName), trainer.epoch, trainer.step)
            print("resuming \(model.name) from \(from): step \(trainer.step), \(position(of: trainer))")
        }
        // From here on, Ctrl-C stops at the next step boundary with a checkpoint.
        Interrupts.install()
        print("objective: \(WeightingReport.summary(model))")
        print("training \(model.name): \(train.count) examples, batch \(model.train.batch), \(trainer.epochs) epoch\(trainer.epochs == 1 ? "" : "s"), \(trainer.parameters.totalCount) parameters, \(options.threads) thread\(options.threads == 1 ? "" : "s")")

        func save(_ trainer: Trainer) throws {
            try TrainingState.save(trainer, to: outDirectory)
            kept = (checkpoint, trainer.epoch, trainer.step)
        }
        let progressBar = ProgressBar()
        let isGECO: Bool = { if case .geco = model.objective.beta { return true } else { return false } }()
        let start = Date()
        let outcome: Trainer.Outcome
        do {
            outcome = try trainer.train(checkpointEvery: checkpointEvery,
                                        shouldStop: { progressBar.update(trainer); return Interrupts.requested },
                                        afterEpoch: { report in
                                            progressBar.clear()
                                            print(format(report, of: trainer.epochs, features: model.input.featureCount, isGECO: isGECO))
                                            return true
                                        },
                                        checkpoint: save)
        } catch let error as NonFiniteValueError {
            progressBar.clear()
            var message = "error: \(error)\nThe parameters were not updated with the failing step. "
            if let kept {
                message += "The last good checkpoint is kept: \(kept.path) (step \(kept.step), \(kept.epoch) epoch\(kept.epoch == 1 ? "" : "s") done)."
            } else {
                message += "No checkpoint was written before the failure (use --checkpoint-every N to write one every N steps)."
            }
            if let origin = error.origin, origin.line > 0 {
                message += "\nLook at line \(origin.line): an overflowing exp, a log or sqrt of a non-positive value, a division by zero or a learning rate that is too large are the usual causes."
            }
            FileHandle.standardError.write(Data((message + "\n").utf8))
            exit(1)
        }
        progressBar.clear()
        if outcome == .stopped && Interrupts.requested {
            try save(trainer)
            print("interrupted: training stopped after step \(trainer.step) (\(position(of: trainer))) and wrote its checkpoint to \(checkpoint).")
            print("Continue with: vaec run \(path) --resume \(outDirectory)")
            exit(130)
        }
        Interrupts.uninstall()
        if kept?.path != checkpoint || kept?.step != trainer.step || kept?.epoch != trainer.epoch { try save(trainer) }
        print(String(format: "done in %.2f s; checkpoint: %@", Date().timeIntervalSince(start), checkpoint))
        if !args.flags.contains("--no-report") {
            // The report's IWAE bound costs about a second on the sample with 100 samples: opt-in via --iw.
            let iw = try args.integer("--iw", in: 0...100_000) ?? 0
            let written = try RunReport.write(program: program, parameters: trainer.parameters, history: trainer.history,
                                              data: test ?? train, to: args.options["--report"] ?? RunReport.directory(forRun: outDirectory),
                                              options: .init(iwSamples: iw, threads: options.threads, checkpoint: checkpoint))
            print("report: \(written.index)")
        }
    }

    /// `--resume` takes an optional directory: the next word when it is not an option or a model
    /// file. Returns the other words, and nil (no resume), .some(nil) (default directory) or the directory.
    static func resumeOption(_ words: ArraySlice<String>) throws -> (ArraySlice<String>, String??) {
        var rest: [String] = []
        var resume: String?? = nil
        var i = words.startIndex
        while i < words.endIndex {
            let word = words[i]
            if word == "--resume" {
                let next = i + 1 < words.endIndex ? words[i + 1] : nil
                if let next, !next.hasPrefix("-"), !next.hasSuffix(".vae"), !next.hasSuffix(".vaek") {
                    resume = .some(next); i += 1
                } else {
                    resume = .some(nil)
                }
            } else if word.hasPrefix("--resume=") {
                let value = String(word.dropFirst("--resume=".count))
                guard !value.isEmpty else { throw UsageError("--resume= needs a directory") }
                resume = .some(value)
            } else {
                rest.append(word)
            }
            i += 1
        }
        return (rest[...], resume)
    }

    /// "epoch 3, batch 12 of 31" or "after epoch 3" for progress messages.
    static func position(of trainer: Trainer) -> String {
        let done = trainer.step - trainer.epoch * trainer.stepsPerEpoch
        if done == 0 || trainer.epoch >= trainer.epochs { return "\(trainer.epoch) of \(trainer.epochs) epochs done" }
        return "epoch \(trainer.epoch + 1) of \(trainer.epochs), batch \(done) of \(trainer.stepsPerEpoch)"
    }

    /// Per-epoch line; β is the effective β in force at the epoch's last step (1/λ under GECO).
    static func format(_ r: EpochReport, of epochs: Int, features: Int, isGECO: Bool = false) -> String {
        let width = String(epochs).count
        var line = String(format: "epoch %\(width)d/%d  train -ELBO %.2f (recon %.2f, KL %.2f)", r.epoch, epochs,
                          r.trainELBO, r.trainReconstruction, r.trainKL)
        if let elbo = r.testELBO, let rec = r.testReconstruction, let kl = r.testKL {
            line += String(format: "  test -ELBO %.2f (recon %.2f, KL %.2f)", elbo, rec, kl)
        }
        // Bits per dimension: −ELBO / (N·ln 2), train and (when there is a test set) test.
        let bits = { (elbo: Double) in elbo / (Double(features) * M_LN2) }
        line += String(format: "  bits/dim %.4f", bits(r.trainELBO))
        if let test = r.testELBO { line += String(format: "/%.4f", bits(test)) }
        line += String(format: "  beta %g", r.beta)
        if isGECO { line += String(format: " (lambda %g)", 1 / r.beta) }
        line += String(format: "  %.2f s", r.seconds)
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
