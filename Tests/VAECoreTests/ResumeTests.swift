import Foundation
import XCTest
@testable import VAECore

/// Checkpoints resume bit for bit: a run cut anywhere (between epochs, mid-epoch) and resumed from its
/// two files ends with the same parameter bits, optimizer state, random state and epoch reports as the
/// same run done straight through.
final class ResumeTests: XCTestCase {
    /// A tiny VAE (8-6-2-6-8), 64 binary examples, batch 16: 4 steps per epoch.
    static func program(hidden: Int = 6, objective: String = "") throws -> CompiledProgram {
        try TestModels.compile(TestModels.mlp(inputs: 8, hidden: hidden, latents: 2, activation: "tanh",
                                              objective: objective, train: "batch: 16\nepochs: 4\nseed: 11")).program
    }

    static func data(count: Int = 64, seed: UInt64 = 5) -> Dataset {
        var rng = RandomSource(seed: seed)
        let values = (0..<count * 8).map { _ in rng.nextUniform() < 0.4 ? Float(1) : 0 }
        return Dataset(path: "memory.npy", count: count, features: 8, values: values)
    }

    static func trainer(_ program: CompiledProgram, epochs: Int, threads: Int = 1) throws -> Trainer {
        var options = TrainOptions()
        options.epochs = epochs
        options.threads = threads
        return try Trainer(program: program, train: data(), test: data(count: 16, seed: 9), options: options)
    }

    /// Everything that must be identical: parameters, Adam's moments and step, the random state, the
    /// controller state and every figure of every epoch report (not its wall-clock seconds).
    static func assertSameState(_ a: Trainer, _ b: Trainer, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.step, b.step, file: file, line: line)
        XCTAssertEqual(a.epoch, b.epoch, file: file, line: line)
        XCTAssertEqual(a.random.stateWords, b.random.stateWords, "random state", file: file, line: line)
        XCTAssertEqual(a.controller.state.map(\.bitPattern), b.controller.state.map(\.bitPattern), file: file, line: line)
        let (stepA, mA, vA) = a.optimizer.state, (stepB, mB, vB) = b.optimizer.state
        XCTAssertEqual(stepA, stepB, file: file, line: line)
        for index in a.parameters.specs.indices {
            let name = a.parameters.specs[index].name
            XCTAssertEqual(a.parameters.values(index).map(\.bitPattern), b.parameters.values(index).map(\.bitPattern), name, file: file, line: line)
            XCTAssertEqual(mA.values(index).map(\.bitPattern), mB.values(index).map(\.bitPattern), "adam.m.\(name)", file: file, line: line)
            XCTAssertEqual(vA.values(index).map(\.bitPattern), vB.values(index).map(\.bitPattern), "adam.v.\(name)", file: file, line: line)
        }
        XCTAssertEqual(a.history.map(figures), b.history.map(figures), "epoch reports", file: file, line: line)
    }

    static func figures(_ r: EpochReport) -> [UInt64] {
        [UInt64(r.epoch), UInt64(r.steps), r.trainReconstruction.bitPattern, r.trainKL.bitPattern,
         r.testReconstruction?.bitPattern ?? 1, r.testKL?.bitPattern ?? 1, r.beta.bitPattern]
    }

    func testFourEpochsStraightEqualTwoPlusTwoWithAResume() throws {
        let program = try Self.program()
        let folder = try TestPaths.temporaryFolder(for: self).path

        let straight = try Self.trainer(program, epochs: 4)
        XCTAssertEqual(try straight.train(), .finished)

        let first = try Self.trainer(program, epochs: 2)
        XCTAssertEqual(try first.train(), .finished)
        try TrainingState.save(first, to: folder)

        let second = try Self.trainer(program, epochs: 4)
        try TrainingState.resume(second, from: folder)
        XCTAssertEqual(second.epoch, 2)
        XCTAssertEqual(try second.train(), .finished)

        XCTAssertEqual(straight.history.count, 4)
        Self.assertSameState(straight, second)
        // The run moved: the comparison is not between two untouched initialisations.
        let fresh = try Self.trainer(program, epochs: 4)
        XCTAssertNotEqual(fresh.parameters.values(0), straight.parameters.values(0))
    }

    /// The acceptance test, through the binary: 10 epochs straight and 5 + 5 with `--resume`
    /// write the same checkpoint bytes and print the same epoch lines (but for the seconds).
    func testTenEpochsStraightEqualFivePlusFiveThroughTheCLI() throws {
        let folder = try TestPaths.temporaryFolder(for: self)
        var rng = RandomSource(seed: 8)
        let data = (0..<48 * 8).map { _ in rng.nextUniform() < 0.5 ? Float(0) : 1 }
        try NPYFile.write(float32: data, dims: [48, 8], to: folder.appendingPathComponent("data.npy").path)
        let model = folder.appendingPathComponent("tiny.vae")
        try TestModels.mlp(inputs: 8, hidden: 5, latents: 2, activation: "tanh",
                           train: "data: npy(\"data.npy\")\ntest: npy(\"data.npy\")\nbatch: 16\nepochs: 10\nseed: 2")
            .write(to: model, atomically: true, encoding: .utf8)
        let straight = try VAECProcess.run(["run", model.path, "--out", "straight"], in: folder)
        let first = try VAECProcess.run(["run", model.path, "--epochs", "5", "--out", "cut"], in: folder)
        let second = try VAECProcess.run(["run", model.path, "--resume", "cut"], in: folder)
        for r in [straight, first, second] { XCTAssertEqual(r.status, 0, r.stderr) }
        XCTAssertTrue(second.stdout.contains("resuming tiny from cut"), second.stdout)
        /// The figures of each epoch line: from "train" up to the time at its end.
        func epochLines(_ text: String) -> [String] {
            text.split(separator: "\n").filter { $0.hasPrefix("epoch") }.compactMap { line in
                guard let train = line.range(of: "train"), let time = line.range(of: "  ", options: .backwards) else { return nil }
                return String(line[train.lowerBound..<time.lowerBound])
            }
        }
        let lines = epochLines(straight.stdout)
        XCTAssertEqual(lines.count, 10)
        XCTAssertEqual(lines, epochLines(first.stdout) + epochLines(second.stdout))
        for name in [Checkpoint.fileName] {
            XCTAssertEqual(try Data(contentsOf: folder.appendingPathComponent("straight/" + name)),
                           try Data(contentsOf: folder.appendingPathComponent("cut/" + name)))
        }
    }

    func testAStopMidEpochResumesBitForBit() throws {
        let program = try Self.program()
        let folder = try TestPaths.temporaryFolder(for: self).path
        let straight = try Self.trainer(program, epochs: 3)
        try straight.train()

        // Stop after 6 steps: epoch 2, batch 2 of 4, with running sums and a shuffle in flight.
        let interrupted = try Self.trainer(program, epochs: 3)
        XCTAssertEqual(try interrupted.train(shouldStop: { interrupted.step == 6 }), .stopped)
        XCTAssertEqual(interrupted.step, 6)
        XCTAssertEqual(interrupted.epoch, 1)
        try TrainingState.save(interrupted, to: folder)

        let resumed = try Self.trainer(program, epochs: 3)
        try TrainingState.resume(resumed, from: folder)
        XCTAssertEqual(resumed.step, 6)
        try resumed.train()
        Self.assertSameState(straight, resumed)
    }

    func testCheckpointsComeEveryNStepsOrEveryEpoch() throws {
        let program = try Self.program()
        var everyFive: [Int] = []
        try Self.trainer(program, epochs: 4).train(checkpointEvery: 5, checkpoint: { everyFive.append($0.step) })
        XCTAssertEqual(everyFive, [5, 10, 15])
        var everyEpoch: [Int] = []
        try Self.trainer(program, epochs: 4).train(checkpoint: { everyEpoch.append($0.step) })
        XCTAssertEqual(everyEpoch, [4, 8, 12, 16])
    }

    func testTheCheckpointHoldsOnlyTheParametersUnderTheirNames() throws {
        let program = try Self.program()
        let folder = try TestPaths.temporaryFolder(for: self).path
        let trainer = try Self.trainer(program, epochs: 1)
        try trainer.train()
        try TrainingState.save(trainer, to: folder)
        let file = try SafeTensors.read(path: folder + "/" + Checkpoint.fileName)
        XCTAssertEqual(Set(file.tensors.keys), Set(program.model.parameters.map(\.name)))
        for (index, spec) in program.model.parameters.enumerated() {
            XCTAssertEqual(file.tensors[spec.name]?.shape, spec.dims)
            XCTAssertEqual(file.tensors[spec.name]?.values, trainer.parameters.values(index))
        }
        XCTAssertEqual(file.metadata["format"], Checkpoint.format)
        XCTAssertEqual(file.metadata["step"], "4")
        // The checksum is the CRC-32 of the data buffer, recomputed here independently of the writer.
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: folder + "/" + Checkpoint.fileName)))
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual(UInt32(file.metadata["crc32"] ?? "", radix: 16), CRC32.checksum(Array(bytes[(8 + headerLength)...])))
    }

    func testResumingWithAnotherModelIsRefused() throws {
        let folder = try TestPaths.temporaryFolder(for: self).path
        let trainer = try Self.trainer(try Self.program(hidden: 6), epochs: 1)
        try trainer.train()
        try TrainingState.save(trainer, to: folder)
        let other = try Self.trainer(try Self.program(hidden: 5), epochs: 2)
        XCTAssertThrowsError(try TrainingState.resume(other, from: folder)) { error in
            XCTAssertTrue("\(error)".contains("another model"), "\(error)")
            XCTAssertTrue("\(error)".contains(Checkpoint.fileName), "\(error)")
        }
        XCTAssertEqual(other.step, 0, "a refused resume leaves the trainer untouched")
    }

    func testADamagedOrMismatchedPairIsRefusedBeforeAnythingIsLoaded() throws {
        let program = try Self.program()
        let folder = try TestPaths.temporaryFolder(for: self).path
        let trainer = try Self.trainer(program, epochs: 2)
        try trainer.train(checkpointEvery: 4, checkpoint: { t in
            // Keep the step-4 training state beside the step-8 parameters: the pair a crash between
            // the two writes would leave.
            if t.step == 4 { try TrainingState.save(t, to: folder) } else {
                try Checkpoint.save(t.parameters, model: t.program.model, epoch: t.epoch, step: t.step,
                                    to: folder + "/" + Checkpoint.fileName)
            }
        })
        let fresh = try Self.trainer(program, epochs: 4)
        let before = fresh.parameters.values(0)
        XCTAssertThrowsError(try TrainingState.resume(fresh, from: folder)) { error in
            XCTAssertTrue("\(error)".contains("do not belong together"), "\(error)")
        }
        XCTAssertEqual(fresh.parameters.values(0), before)

        // One flipped bit in the parameters' data: the checksum catches it.
        try TrainingState.save(trainer, to: folder)
        let path = folder + "/" + Checkpoint.fileName
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes[bytes.count - 3] ^= 0x04
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try TrainingState.resume(fresh, from: folder)) { error in
            XCTAssertTrue("\(error)".hasPrefix(path), "\(error)")
            XCTAssertTrue("\(error)".contains("damaged"), "\(error)")
        }
    }

    /// A controller with state (GECO's λ and moving average) resumes exactly too.
    func testControllerStateIsSavedAndRestored() throws {
        let program = try Self.program(objective: "beta: geco(kappa: 5, alpha: 0.1)")
        XCTAssertFalse(BetaController(schedule: program.model.objective.beta).state.isEmpty)
        let folder = try TestPaths.temporaryFolder(for: self).path
        let straight = try Self.trainer(program, epochs: 3)
        try straight.train()
        let cut = try Self.trainer(program, epochs: 3)
        try cut.train(shouldStop: { cut.step == 5 })
        try TrainingState.save(cut, to: folder)
        let resumed = try Self.trainer(program, epochs: 3)
        try TrainingState.resume(resumed, from: folder)
        XCTAssertEqual(resumed.controller.state, cut.controller.state)
        try resumed.train()
        Self.assertSameState(straight, resumed)
        XCTAssertNotEqual(straight.controller.state, BetaController(schedule: program.model.objective.beta).state)
    }

    /// Same model, data and seed: the same bits, run after run, with one worker thread or two.
    func testTrainingIsDeterministicAcrossRunsAndThreadCounts() throws {
        let program = try Self.program(hidden: 40)
        let one = try Self.trainer(program, epochs: 2, threads: 1)
        try one.train()
        let again = try Self.trainer(program, epochs: 2, threads: 1)
        try again.train()
        let two = try Self.trainer(program, epochs: 2, threads: 2)
        try two.train()
        Self.assertSameState(one, again)
        Self.assertSameState(one, two)
    }
}
