import Foundation
import XCTest
@testable import VAECore

/// A tiny model (16-8-2-8-16) trained on synthetic binary data: the loss falls, and the numbers are
/// reproducible — same seed, any thread count, and through a .vaek file.
final class EndToEndTests: XCTestCase {
    static let features = 16

    static let source = TestModels.mlp(inputs: features, hidden: 8, latents: 2, objective: """
        reconstruction: sum
        kl: analytic
        beta: 1
        """, train: """
        optimizer: adam(lr: 1e-2)
        batch: 32
        epochs: 30
        seed: 3
        """)

    /// Four random 16-pixel prototypes, each example one of them with every pixel flipped with
    /// probability 0.05: structure a 2-d latent can capture (about log 4 nats of it).
    static func data(count: Int, seed: UInt64) -> Dataset {
        var random = RandomSource(seed: 1234)
        let prototypes = (0..<4).map { _ in (0..<features).map { _ in Float(random.nextIndex(below: 2)) } }
        random = RandomSource(seed: seed)
        var values: [Float] = []
        for _ in 0..<count {
            for pixel in prototypes[random.nextIndex(below: 4)] {
                values.append(random.nextUniform() < 0.05 ? 1 - pixel : pixel)
            }
        }
        return Dataset(path: "synthetic", count: count, features: features, values: values)
    }

    static let train = data(count: 256, seed: 1)
    static let test = data(count: 64, seed: 2)

    /// Reproducibility needs only a few epochs (3, each with a shuffle, 8 Adam steps and a test pass).
    func trainer(_ program: CompiledProgram, threads: Int = 1, epochs: Int? = 3) throws -> Trainer {
        var options = TrainOptions()
        options.threads = threads
        options.epochs = epochs
        options.log = { _ in }
        return try Trainer(program: program, train: Self.train, test: Self.test, options: options)
    }

    /// Everything a run produces that must be reproducible: every epoch's figures and the final parameters.
    struct Outcome: Equatable {
        var figures: [[Double]]
        var parameters: [[UInt32]]
    }

    func outcome(of trainer: Trainer) throws -> Outcome {
        let history = try trainer.run()
        return Outcome(figures: history.map { [$0.trainReconstruction, $0.trainKL, $0.testReconstruction ?? .nan, $0.testKL ?? .nan] },
                       parameters: trainer.parameters.specs.indices.map { trainer.parameters.values($0).map(\.bitPattern) })
    }

    func testTrainingLowersTheNegativeELBO() throws {
        let program = try TestModels.compile(Self.source).program
        let trainer = try self.trainer(program, epochs: nil)
        let before = trainer.evaluate(Self.train, seed: 0)
        let history = try trainer.run()
        XCTAssertEqual(history.count, 30)
        XCTAssertEqual(history.map(\.steps), [Int](repeating: 256 / 32, count: 30))
        let initial = before.reconstruction + before.kl
        let final = try XCTUnwrap(history.last)
        // Untrained, the decoder is near-uniform: about 16·log 2 = 11.1 nats per example.
        XCTAssertGreaterThan(initial, 9)
        XCTAssertLessThan(final.trainELBO, 0.7 * initial, "train −ELBO per epoch: \(history.map(\.trainELBO)), initial \(initial)")
        XCTAssertLessThan(final.trainELBO, history[0].trainELBO)
        let testELBO = try XCTUnwrap(final.testELBO)
        XCTAssertLessThan(testELBO, 0.7 * initial)
        XCTAssertGreaterThan(final.trainKL, 0, "the latent is used")
        XCTAssertTrue(history.allSatisfy { $0.trainELBO.isFinite && ($0.testELBO ?? 0).isFinite })
    }

    func testTheSameSeedGivesBitIdenticalRuns() throws {
        let program = try TestModels.compile(Self.source).program
        let first = try outcome(of: trainer(program))
        let second = try outcome(of: trainer(program))
        XCTAssertEqual(first, second)
        // …and a different seed gives a different run (the comparison above is not vacuous).
        let reseeded = try TestModels.compile(Self.source.replacingOccurrences(of: "seed: 3", with: "seed: 4")).program
        XCTAssertNotEqual(try outcome(of: trainer(reseeded)), first)
    }

    func testOneAndTwoThreadsGiveBitIdenticalRuns() throws {
        let program = try TestModels.compile(Self.source).program
        XCTAssertEqual(try outcome(of: trainer(program, threads: 1)), try outcome(of: trainer(program, threads: 2)))
    }

    func testTheVaekRoundTripGivesTheSameProgramAndTheSameTraining() throws {
        let program = try TestModels.compile(Self.source).program
        let bytes = try program.encoded()
        let decoded = try CompiledProgram.decode(bytes, path: "tiny.vaek")
        XCTAssertEqual(try decoded.encoded(), bytes, "encode(decode(bytes)) differs from bytes")
        XCTAssertEqual(decoded.graph.nodes, program.graph.nodes)
        XCTAssertEqual(decoded.graph.outputs.map(\.name), program.graph.outputs.map(\.name))
        XCTAssertEqual(decoded.graph.outputs.map(\.value), program.graph.outputs.map(\.value))
        XCTAssertEqual(decoded.model.parameters, program.model.parameters)
        XCTAssertEqual(decoded.model.objective, program.model.objective)
        XCTAssertEqual(decoded.model.train, program.model.train)
        XCTAssertEqual(try outcome(of: trainer(decoded)), try outcome(of: trainer(program)))

        // Through a file on disk, as `vaec compile -o` and `vaec run` use it.
        let folder = try TestPaths.temporaryFolder(for: self)
        let path = folder.appendingPathComponent("tiny.vaek").path
        try program.write(to: path)
        XCTAssertEqual(try CompiledProgram.read(path: path).encoded(), bytes)
    }
}
