import Foundation

/// Everything a run needs besides the parameters to continue bit for bit: Adam's moments and step,
/// the random generator's state, the position inside the current epoch (its shuffle and running sums),
/// the β controller's state and the reports of the epochs so far. It lives in
/// `training-state.safetensors` beside `checkpoint.safetensors`: moments as F32 tensors
/// `adam.m.<name>` / `adam.v.<name>`, everything else in the metadata as exact text (integers in
/// decimal, doubles and random words as hex bit patterns), sealed with a version and a CRC-32 like the
/// checkpoint (`SealedSafeTensors`).
public enum TrainingState {
    public static let fileName = "training-state.safetensors"
    public static let format = "vaec-training-state"
    public static let formatVersion = 1

    /// Writes the training state, then the parameters. Each write is atomic; both files carry the
    /// step, and `resume` refuses a pair whose steps differ (a crash between the two writes).
    public static func save(_ trainer: Trainer, to directory: String) throws {
        try SealedSafeTensors.write(encode(trainer), format: format, version: formatVersion,
                                    to: (directory as NSString).appendingPathComponent(fileName))
        try Checkpoint.save(trainer.parameters, model: trainer.program.model, epoch: trainer.epoch, step: trainer.step,
                            to: (directory as NSString).appendingPathComponent(Checkpoint.fileName))
    }

    /// Restores a trainer (fresh, same program and data) from the two files in `directory`. Every file
    /// is validated in full before the trainer is touched.
    public static func resume(_ trainer: Trainer, from directory: String) throws {
        let checkpointPath = (directory as NSString).appendingPathComponent(Checkpoint.fileName)
        let statePath = (directory as NSString).appendingPathComponent(fileName)
        for path in [checkpointPath, statePath] where !FileManager.default.fileExists(atPath: path) {
            throw FormatError(path: path, problem: "does not exist: --resume needs \(Checkpoint.fileName) and \(fileName) from an earlier run in \(directory)")
        }
        let model = trainer.program.model
        let parameters = try SealedSafeTensors.read(path: checkpointPath, format: Checkpoint.format,
                                                    version: Checkpoint.formatVersion, what: "checkpoint")
        let stateFile = try SealedSafeTensors.read(path: statePath, format: format, version: formatVersion, what: "training state")
        let hash = ModelIdentity.hash(model)
        for (file, path) in [(parameters, checkpointPath), (stateFile, statePath)] where file.metadata["model_hash"] != hash {
            throw FormatError(path: path, problem: "belongs to another model ('\(file.metadata["model"] ?? "?")', fingerprint \(file.metadata["model_hash"] ?? "none")) than \(model.sourcePath) ('\(model.name)', fingerprint \(hash)): a run can only be resumed with the model it was started with")
        }
        let state = try Snapshot(stateFile, path: statePath, trainer: trainer)
        try Checkpoint.check(parameters, against: model.parameters, path: checkpointPath)
        guard parameters.metadata["step"] == String(state.step) else {
            throw FormatError(path: checkpointPath, problem: "is from step \(parameters.metadata["step"] ?? "?"), but \(fileName) beside it is from step \(state.step): the two files do not belong together (was a run interrupted between writing them?)")
        }
        for (index, spec) in model.parameters.enumerated() { trainer.parameters.set(index, parameters.tensors[spec.name]!.values) }
        state.apply(to: trainer)
    }

    static func encode(_ trainer: Trainer) -> SafeTensors {
        var file = SafeTensors()
        let (adamStep, first, second) = trainer.optimizer.state
        for (index, spec) in trainer.parameters.specs.enumerated() {
            file.tensors["adam.m.\(spec.name)"] = SafeTensors.Tensor(shape: spec.dims, values: first.values(index))
            file.tensors["adam.v.\(spec.name)"] = SafeTensors.Tensor(shape: spec.dims, values: second.values(index))
        }
        var meta: [String: String] = [
            "vaec_version": VAECVersion.current,
            "model": trainer.program.model.name,
            "model_hash": ModelIdentity.hash(trainer.program.model),
            "step": String(trainer.step),
            "epoch": String(trainer.epoch),
            "adam_step": String(adamStep),
            "random": Exact.words(trainer.random.stateWords),
            "controller": Exact.doubles(trainer.controller.state),
            "history": trainer.history.map(Exact.report).joined(separator: ";"),
        ]
        if let p = trainer.progress {
            meta["epoch_shuffle"] = Exact.words(p.shuffleState)
            meta["epoch_batches_done"] = String(p.batchesDone)
            meta["epoch_sums"] = Exact.doubles([p.reconstruction, p.kl, p.beta, p.seconds])
        }
        file.metadata = meta
        return file
    }

    /// The decoded, validated contents of a training-state file.
    struct Snapshot {
        var step: Int
        var epoch: Int
        var adamStep: Int
        var first: [[Float]]
        var second: [[Float]]
        var random: [UInt64]
        var controller: [Double]
        var history: [EpochReport]
        var progress: Trainer.EpochProgress?

        init(_ file: SafeTensors, path: String, trainer: Trainer) throws {
            func fail(_ problem: String) -> FormatError { FormatError(path: path, problem: problem) }
            func entry(_ key: String) throws -> String {
                guard let v = file.metadata[key] else { throw fail("has no '\(key)' entry in its metadata") }
                return v
            }
            func count(_ key: String) throws -> Int {
                let text = try entry(key)
                guard let v = Int(text), v >= 0 else { throw fail("has a bad '\(key)' entry '\(text)' (expected a whole number)") }
                return v
            }
            func decode<T>(_ key: String, _ parse: (String) -> T?) throws -> T {
                let text = try entry(key)
                guard let v = parse(text) else { throw fail("has a malformed '\(key)' entry in its metadata") }
                return v
            }
            step = try count("step")
            epoch = try count("epoch")
            adamStep = try count("adam_step")
            guard adamStep == step else { throw fail("says Adam took \(adamStep) steps in a run of \(step) steps") }
            random = try decode("random") { Exact.words($0, count: 4) }
            guard random != [0, 0, 0, 0] else { throw fail("holds the all-zero random state, which xoshiro256** never reaches") }
            controller = try decode("controller") { Exact.doubles($0) }
            let expected = trainer.controller.state.count
            guard controller.count == expected else {
                throw fail("holds \(controller.count) numbers of β-controller state, but this model's controller has \(expected)")
            }
            history = []
            let reports = try entry("history")
            for part in reports.split(separator: ";", omittingEmptySubsequences: false) where !reports.isEmpty {
                guard let report = Exact.report(String(part)) else { throw fail("has a malformed epoch report in its 'history' entry") }
                history.append(report)
            }
            guard history.count == epoch, history.enumerated().allSatisfy({ $0.element.epoch == $0.offset + 1 }) else {
                throw fail("holds \(history.count) epoch reports for \(epoch) finished epochs")
            }
            let batches = trainer.stepsPerEpoch
            var stepsInEpoch = 0
            if file.metadata["epoch_batches_done"] != nil {
                let shuffle = try decode("epoch_shuffle") { Exact.words($0, count: 4) }
                let done = try count("epoch_batches_done")
                let sums = try decode("epoch_sums") { Exact.doubles($0) }
                guard done < batches, sums.count == 4 else {
                    throw fail("describes a position in an epoch (\(done) batches done) that does not fit this data (\(batches) batches per epoch)")
                }
                var shuffler = RandomSource(state: shuffle)
                progress = Trainer.EpochProgress(shuffleState: shuffle, order: shuffler.permutation(trainer.train.count),
                                                 batchesDone: done, reconstruction: sums[0], kl: sums[1],
                                                 beta: sums[2], seconds: sums[3])
                stepsInEpoch = done
            }
            guard step == epoch * batches + stepsInEpoch else {
                throw fail("is at step \(step), which does not match epoch \(epoch) + \(stepsInEpoch) batches of \(batches) with this data (was the data set changed?)")
            }
            first = []; second = []
            for spec in trainer.parameters.specs {
                for (prefix, into) in [("adam.m.", 0), ("adam.v.", 1)] {
                    guard let t = file.tensors[prefix + spec.name], t.shape == spec.dims else {
                        throw fail("has no tensor '\(prefix + spec.name)' of shape \(spec.dims) for the optimizer's moments")
                    }
                    if into == 0 { first.append(t.values) } else { second.append(t.values) }
                }
            }
            guard second.allSatisfy({ $0.allSatisfy { $0 >= 0 } }) else {
                throw fail("holds a negative second moment (adam.v.*), which Adam never produces")
            }
            guard file.tensors.count == 2 * trainer.parameters.specs.count else {
                throw fail("holds tensors that this model's optimizer does not have")
            }
        }

        func apply(to trainer: Trainer) {
            let (_, m, v) = trainer.optimizer.state
            for index in trainer.parameters.specs.indices { m.set(index, first[index]); v.set(index, second[index]) }
            trainer.optimizer.restore(step: adamStep)
            trainer.random = RandomSource(state: random)
            trainer.controller.state = controller
            trainer.step = step
            trainer.epoch = epoch
            trainer.history = history
            trainer.progress = progress
            if progress != nil { trainer.drawEpochData() }   // a dynamic binarisation's draw of this epoch
        }
    }
}

/// Exact text forms of numbers for metadata: hex bit patterns round-trip every double and word.
enum Exact {
    static func words(_ w: [UInt64]) -> String { w.map { String($0, radix: 16) }.joined(separator: ",") }

    static func words(_ text: String, count: Int) -> [UInt64]? {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        guard parts.count == count else { return nil }
        let words = parts.compactMap { $0.count <= 16 ? UInt64($0, radix: 16) : nil }
        return words.count == count ? words : nil
    }

    static func double(_ d: Double) -> String { String(d.bitPattern, radix: 16) }

    static func double(_ text: Substring) -> Double? {
        guard text.count <= 16, let bits = UInt64(text, radix: 16) else { return nil }
        return Double(bitPattern: bits)
    }

    static func doubles(_ values: [Double]) -> String { values.map(double).joined(separator: ",") }

    static func doubles(_ text: String) -> [Double]? {
        if text.isEmpty { return [] }
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(double)
        return parts.contains { $0 == nil } ? nil : parts.map { $0! }
    }

    /// One epoch report: `epoch,steps,trainRecon,trainKL,testRecon,testKL,beta,seconds`, the test
    /// figures empty when there was no test set.
    static func report(_ r: EpochReport) -> String {
        [String(r.epoch), String(r.steps), double(r.trainReconstruction), double(r.trainKL),
         r.testReconstruction.map(double) ?? "", r.testKL.map(double) ?? "", double(r.beta), double(r.seconds)]
            .joined(separator: ",")
    }

    static func report(_ text: String) -> EpochReport? {
        let f = text.split(separator: ",", omittingEmptySubsequences: false)
        guard f.count == 8, let epoch = Int(f[0]), let steps = Int(f[1]),
              let recon = double(f[2]), let kl = double(f[3]), let beta = double(f[6]), let seconds = double(f[7]) else { return nil }
        let testRecon = f[4].isEmpty ? nil : double(f[4]), testKL = f[5].isEmpty ? nil : double(f[5])
        guard f[4].isEmpty == (testRecon == nil), f[5].isEmpty == (testKL == nil) else { return nil }
        return EpochReport(epoch: epoch, trainReconstruction: recon, trainKL: kl, testReconstruction: testRecon,
                           testKL: testKL, beta: beta, seconds: seconds, steps: steps)
    }
}
