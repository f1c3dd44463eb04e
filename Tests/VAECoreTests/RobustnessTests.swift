import Foundation
import XCTest
@testable import VAECore

/// Faults during training (a NaN, Ctrl-C) and sizes that must be refused: the behaviour a user sees,
/// through the library and through the real `vaec` binary.
final class RobustnessTests: XCTestCase {
    /// A model whose encoder takes log(x): on data with a 0 the forward pass gets −Inf at that op, on
    /// line 6, in the one step whose batch holds that example.
    static let logModel = """
        model nanlog
        input  x: [4]
        latent z: [2] ~ normal(0, 1)

        encoder q(z | x) {
          h = tanh(linear(log(x), 6))
          z ~ normal(mean: linear(h, 2), logvar: linear(h, 2))
        }

        decoder p(x | z) {
          x ~ normal(mean: linear(z, 4), sigma: 0.5)
        }

        train {
          data: npy("data.npy")
          batch: 8
          epochs: 3
          seed: 1
        }
        """

    /// 64 examples of 4 values in [0.5, 2], with a 0 at example `zeroAt`, feature 2.
    static func logData(zeroAt: Int) -> [Float] {
        var rng = RandomSource(seed: 2)
        var values = rng.uniform(64 * 4, in: 0.5...2)
        values[zeroAt * 4 + 2] = 0
        return values
    }

    static func write(_ model: String, data: [Float], features: Int, to folder: URL) throws -> URL {
        try NPYFile.write(float32: data, dims: [data.count / features, features], to: folder.appendingPathComponent("data.npy").path)
        let url = folder.appendingPathComponent("model.vae")
        try model.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    // MARK: the NaN guard

    /// A gradient can be finite while its square is not (|g| > 1.8e19): Adam's second moment would
    /// become +Inf for good. The guard stops there too, before the update, and says why.
    func testAGradientTooLargeToSquareStopsTraining() throws {
        // σ = 1e-11: a residual of ~0.3 costs 0.09 / 2σ² ≈ 4.5e20 nats (finite), but its gradient
        // (μ − x)/σ² ≈ 3e21 squares to +Inf.
        let model = Self.logModel.replacingOccurrences(of: "log(x)", with: "x").replacingOccurrences(of: "sigma: 0.5", with: "sigma: 1e-11")
        let program = try TestModels.compile(model, path: "huge.vae").program
        var rng = RandomSource(seed: 3)
        let data = Dataset(path: "data.npy", count: 64, features: 4, values: rng.uniform(64 * 4, in: 0.5...2))
        let trainer = try Trainer(program: program, train: data, test: nil)
        let before = (0..<program.model.parameters.count).map { trainer.parameters.values($0) }
        var failure: NonFiniteValueError?
        do { try trainer.train() } catch let error as NonFiniteValueError { failure = error }
        let error = try XCTUnwrap(failure, "a gradient whose square overflows must stop training")
        XCTAssertEqual(error.step, 1)
        XCTAssertTrue(error.quantity.hasPrefix("the gradient of"), error.quantity)
        XCTAssertTrue(error.value.isFinite && !(error.value * error.value).isFinite, "\(error.value)")
        XCTAssertTrue("\(error)".contains("too large for the optimizer to square"), "\(error)")
        for index in before.indices {
            XCTAssertEqual(trainer.parameters.values(index), before[index], "the failing update must not happen")
        }
    }

    func testANonFiniteLossStopsTrainingNamingTheOpAndTheSourceLine() throws {
        let program = try TestModels.compile(Self.logModel, path: "nanlog.vae").program
        let data = Dataset(path: "data.npy", count: 64, features: 4, values: Self.logData(zeroAt: 37))
        let trainer = try Trainer(program: program, train: data, test: nil)
        var failure: NonFiniteValueError?
        do { try trainer.train() } catch let error as NonFiniteValueError { failure = error }
        let error = try XCTUnwrap(failure, "training on data with a 0 under log must fail")
        let origin = try XCTUnwrap(error.origin)
        XCTAssertEqual(origin.mnemonic, Op.log.mnemonic)
        XCTAssertEqual(program.graph[origin.node].op, .log)
        XCTAssertEqual(origin.line, 6)
        XCTAssertEqual(origin.lineText.trimmingCharacters(in: .whitespaces), "h = tanh(linear(log(x), 6))")
        XCTAssertEqual(origin.value, -.infinity)
        let text = "\(error)"
        for part in ["step \(error.step)", "%\(origin.node) = log", "line 6 of nanlog.vae", "h = tanh(linear(log(x), 6))"] {
            XCTAssertTrue(text.contains(part), "'\(part)' missing from: \(text)")
        }
        XCTAssertEqual(trainer.step, error.step - 1, "the failing step is not counted")

        // The parameters are those after the last good step, bit for bit: the failing step's update
        // never happened.
        let reference = try Trainer(program: program, train: data, test: nil)
        try reference.train(shouldStop: { reference.step == error.step - 1 })
        for index in program.model.parameters.indices {
            XCTAssertEqual(trainer.parameters.values(index).map(\.bitPattern), reference.parameters.values(index).map(\.bitPattern))
        }
    }

    func testTheNaNGuardThroughTheCLIExitsWith1AndKeepsTheLastGoodCheckpoint() throws {
        let folder = try TestPaths.temporaryFolder(for: self)
        let model = try Self.write(Self.logModel, data: Self.logData(zeroAt: 37), features: 4, to: folder)
        let result = try VAECProcess.run(["run", model.path, "--checkpoint-every", "1", "--out", "out", "--threads", "1"], in: folder)
        XCTAssertEqual(result.reason, .exit)
        XCTAssertEqual(result.status, 1, result.stderr)
        for part in ["became", "= log", "line 6 of", "h = tanh(linear(log(x), 6))", "last good checkpoint"] {
            XCTAssertTrue(result.stderr.contains(part), "'\(part)' missing from: \(result.stderr)")
        }
        let failedStep = try XCTUnwrap(Self.number(after: "training stopped at step ", in: result.stderr))
        XCTAssertGreaterThan(failedStep, 1, "the bad example should not be in the first batch of this seed")
        // The checkpoint on disk is the one of the step before, and it loads.
        let out = folder.appendingPathComponent("out").path
        let metadata = try SafeTensors.read(path: out + "/" + Checkpoint.fileName).metadata
        XCTAssertEqual(metadata["step"], String(failedStep - 1))
        let program = try Compiler.compile(path: model.path).program
        let trainer = try Trainer(program: program, train: Dataset(path: "d", count: 64, features: 4, values: Self.logData(zeroAt: 37)), test: nil)
        try TrainingState.resume(trainer, from: out)
        XCTAssertEqual(trainer.step, failedStep - 1)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out).sorted(),
                       [Checkpoint.fileName, TrainingState.fileName], "no temporary files are left behind")
    }

    /// samples/nan_demo.vae does what its comment says: fails at step 2 in the exp of line 22 and keeps
    /// the checkpoint of step 1.
    func testTheNaNDemoSampleFailsAtItsExpAndKeepsStepOne() throws {
        let out = try TestPaths.temporaryFolder(for: self).appendingPathComponent("out").path
        let sample = TestPaths.samples.appendingPathComponent("nan_demo.vae").path
        let result = try VAECProcess.run(["run", sample, "--checkpoint-every", "1", "--out", out])
        XCTAssertEqual(result.reason, .exit)
        XCTAssertEqual(result.status, 1, result.stderr)
        for part in ["training stopped at step 2", "= exp (decoder.h)", "line 22 of", "h = exp(linear(z, 64))", "(step 1, 0 epochs done)"] {
            XCTAssertTrue(result.stderr.contains(part), "'\(part)' missing from: \(result.stderr)")
        }
        XCTAssertEqual(try SafeTensors.read(path: out + "/" + Checkpoint.fileName).metadata["step"], "1")
    }

    static func number(after prefix: String, in text: String) -> Int? {
        guard let range = text.range(of: prefix) else { return nil }
        return Int(text[range.upperBound...].prefix { $0.isNumber })
    }

    // MARK: Ctrl-C

    static let tinyBinaryModel = """
        model tiny
        input  x: [8]
        latent z: [2] ~ normal(0, 1)
        encoder q(z | x) {
          h = tanh(linear(x, 6))
          z ~ normal(mean: linear(h, 2), logvar: linear(h, 2))
        }
        decoder p(x | z) {
          x ~ bernoulli(logits: linear(z, 8))
        }
        train {
          data: npy("data.npy")
          batch: 16
          epochs: 1000000
          seed: 4
        }
        """

    func testCtrlCFinishesTheStepWritesTheCheckpointAndExits130() throws {
        let folder = try TestPaths.temporaryFolder(for: self)
        var rng = RandomSource(seed: 8)
        let data = (0..<64 * 8).map { _ in rng.nextUniform() < 0.5 ? Float(0) : 1 }
        let model = try Self.write(Self.tinyBinaryModel, data: data, features: 8, to: folder)
        let running = try VAECProcess.start(["run", model.path, "--out", "out"], in: folder)
        XCTAssertTrue(running.waitForOutput(containing: "epoch ", timeout: 60), "no epoch line: \(running.stdoutSoFar)")
        running.process.interrupt()
        let result = running.finish()
        XCTAssertEqual(result.reason, .exit)
        XCTAssertEqual(result.status, 130, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("interrupted"), result.stdout)
        XCTAssertTrue(result.stdout.contains("--resume out"), result.stdout)
        // The checkpoint it wrote is complete and resumable, at the step it reports.
        let step = try XCTUnwrap(Self.number(after: "stopped after step ", in: result.stdout))
        let program = try Compiler.compile(path: model.path).program
        let trainer = try Trainer(program: program, train: Dataset(path: "d", count: 64, features: 8, values: data), test: nil)
        try TrainingState.resume(trainer, from: folder.appendingPathComponent("out").path)
        XCTAssertEqual(trainer.step, step)
        XCTAssertGreaterThanOrEqual(trainer.epoch, 1)
    }

    func testASecondCtrlCExitsAtOnce() throws {
        // A step of this model (512-2048-2-2048-512, batch 256: about 3 GFLOP) takes tens of
        // milliseconds even in a release build, seconds in a debug one, so the second Ctrl-C, 5 ms
        // after the first, arrives while the first is still waiting for its step to finish.
        let folder = try TestPaths.temporaryFolder(for: self)
        let model = Self.tinyBinaryModel.replacingOccurrences(of: "[8]", with: "[512]")
            .replacingOccurrences(of: "linear(x, 6)", with: "linear(x, 2048)")
            .replacingOccurrences(of: "linear(z, 8)", with: "linear(relu(linear(z, 2048)), 512)")
            .replacingOccurrences(of: "batch: 16", with: "batch: 256")
        var rng = RandomSource(seed: 8)
        let data = (0..<256 * 512).map { _ in rng.nextUniform() < 0.5 ? Float(0) : 1 }
        let url = try Self.write(model, data: data, features: 512, to: folder)
        let running = try VAECProcess.start(["run", url.path, "--out", "out", "--threads", "1"], in: folder)
        XCTAssertTrue(running.waitForOutput(containing: "training tiny", timeout: 60), running.stdoutSoFar)
        usleep(200_000)
        running.process.interrupt()
        usleep(5_000)
        running.process.interrupt()
        let result = running.finish()
        XCTAssertEqual(result.reason, .exit)
        XCTAssertEqual(result.status, 130)
        XCTAssertTrue(result.stderr.contains("interrupted again"), result.stdout + result.stderr)
        XCTAssertFalse(result.stdout.contains("stopped after step"), "the second Ctrl-C did not wait for the checkpoint")
    }

    // MARK: sizes and nesting that must be errors

    func testHugeShapesAreCompileErrorsNotAllocations() throws {
        let cases = [
            ("[16777216, 16777216]", "linear(x, 2)"),
            ("[16777216, 16777216, 16777216, 16777216]", "linear(x, 2)"),
            ("[16777216]", "linear(x, 16777216)"),
        ]
        for (shape, layer) in cases {
            let source = """
                model huge
                input x: \(shape)
                latent z: [2] ~ normal(0, 1)
                encoder q(z | x) {
                  h = relu(\(layer))
                  z ~ normal(mean: linear(h, 2), logvar: linear(h, 2))
                }
                decoder p(x | z) {
                  x ~ bernoulli(logits: linear(z, 16777216))
                }
                objective {
                  beta: 1
                }
                """
            XCTAssertThrowsError(try Compiler.compile(source: SourceFile(path: "huge.vae", text: source)), shape) { error in
                let text = (error as? CompileFailure)?.formatted() ?? "\(error)"
                XCTAssertTrue(text.contains("huge.vae:"), text)
                XCTAssertTrue(text.contains("more than") || text.contains("limit"), text)
            }
        }
    }

    func testDeepNestingIsAnErrorNotAStackOverflow() throws {
        for depth in [10_000, 100_000] {
            for (open, close) in [("(", ")"), ("-", ""), ("relu(", ")")] {
                let expression = String(repeating: open, count: depth) + "x" + String(repeating: close, count: depth)
                let source = TestModels.mlp(inputs: 4, hidden: 4, latents: 2)
                    .replacingOccurrences(of: "h = relu(linear(x, 4))", with: "h = relu(linear(\(expression), 4))")
                XCTAssertThrowsError(try Compiler.compile(source: SourceFile(path: "deep.vae", text: source)), "\(open) × \(depth)")
            }
            // A long flat chain is not nesting in the source, but it is a left-deep tree in the AST.
            let chain = Array(repeating: "x", count: depth).joined(separator: " + ")
            let source = TestModels.mlp(inputs: 4, hidden: 4, latents: 2)
                .replacingOccurrences(of: "h = relu(linear(x, 4))", with: "h = relu(linear(\(chain), 4))")
            _ = try? Compiler.compile(source: SourceFile(path: "chain.vae", text: source))
        }
    }

    // MARK: determinism through the binary

    func testSameSeedGivesTheSameCheckpointBytesAcrossRunsAndThreadCounts() throws {
        let folder = try TestPaths.temporaryFolder(for: self)
        var rng = RandomSource(seed: 8)
        let data = (0..<64 * 8).map { _ in rng.nextUniform() < 0.5 ? Float(0) : 1 }
        let model = try Self.write(Self.tinyBinaryModel.replacingOccurrences(of: "linear(x, 6)", with: "linear(x, 48)"),
                                   data: data, features: 8, to: folder)
        var checkpoints: [Data] = []
        for (index, threads) in ["1", "1", "2"].enumerated() {
            let result = try VAECProcess.run(["run", model.path, "--epochs", "3", "--threads", threads, "--out", "out\(index)"], in: folder)
            XCTAssertEqual(result.status, 0, result.stderr)
            checkpoints.append(try Data(contentsOf: folder.appendingPathComponent("out\(index)/" + Checkpoint.fileName)))
        }
        XCTAssertEqual(checkpoints[0], checkpoints[1], "two runs")
        XCTAssertEqual(checkpoints[0], checkpoints[2], "one thread and two")
    }
}
