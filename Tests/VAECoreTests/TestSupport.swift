import Foundation
import XCTest
@testable import VAECore

/// Paths and small helpers shared by the grammar, diagnostic, gradient, loss, end-to-end and CLI tests.
enum TestPaths {
    /// The package root, found from this file's path (tests run from any working directory).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // VAECoreTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()

    static let samples = packageRoot.appendingPathComponent("samples")
    static let grammar = packageRoot.appendingPathComponent("Grammar/vae.ebnf")
    /// Excluded from the test target's sources by Package.swift, so `.vae` files there are data.
    static let fixtures = packageRoot.appendingPathComponent("Tests/VAECoreTests/Fixtures")
    static let diagnosticFixtures = fixtures.appendingPathComponent("diagnostics")

    /// Files of a folder with an extension, sorted by name (stable test order).
    static func files(in folder: URL, withExtension ext: String) throws -> [URL] {
        try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == ext }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    /// A fresh temporary folder, removed when the test ends.
    static func temporaryFolder(for test: XCTestCase) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("vaec-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }
}

/// Compiling model source written inside a test.
enum TestModels {
    /// Compiles `text` as if it were the file `path`; a failure fails the test with the formatted diagnostics.
    static func compile(_ text: String, path: String = "test.vae", file: StaticString = #filePath,
                        line: UInt = #line) throws -> Compiler.Result {
        do {
            return try Compiler.compile(source: SourceFile(path: path, text: text))
        } catch {
            XCTFail("the test model does not compile:\n\(error.formatted())", file: file, line: line)
            throw error
        }
    }

    /// A small model in the shape of samples/mnist.vae: `inputs`-`hidden`-`latents`-`hidden`-`inputs`.
    static func mlp(inputs: Int, hidden: Int, latents: Int, activation: String = "relu",
                    objective: String = "", train: String = "") -> String {
        """
        model tiny
        input  x: [\(inputs)]
        latent z: [\(latents)] ~ normal(0, 1)

        encoder q(z | x) {
          h = \(activation)(linear(x, \(hidden)))
          z ~ normal(mean: linear(h, \(latents)), logvar: linear(h, \(latents)))
        }

        decoder p(x | z) {
          h = \(activation)(linear(z, \(hidden)))
          x ~ bernoulli(logits: linear(h, \(inputs)))
        }

        objective {
        \(objective)
        }

        train {
        \(train)
        }
        """
    }
}

/// Runs a compiled graph on caller-chosen parameter values, data and noise (forward only, or with the
/// gradient outputs), for the closed-form and gradient tests.
final class GraphRun {
    let executable: Executable
    private var storage: [UnsafeMutablePointer<Float>] = []

    init(graph: Graph, outputs: [String], batch: Int) {
        executable = Executable(graph: graph, outputs: outputs, batch: batch, threads: 1)
    }

    deinit { for p in storage { p.deallocate() } }

    /// Binds a leaf to a copy of `values` (no-op when the scheduled graph does not read the leaf).
    func bind(_ op: Op, _ values: [Float]) {
        guard let id = executable.uses(op) else { return }
        let count = executable.graph[id].shape.elementCount(batch: executable.batch)
        precondition(values.count == count, "\(op.mnemonic) needs \(count) values, got \(values.count)")
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        p.initialize(from: values, count: count)
        storage.append(p)
        executable.bind(id, to: p)
    }

    func run() { executable.run() }

    func values(_ output: String) -> [Float] {
        guard let p = executable.value(output) else { return [] }
        return Array(UnsafeBufferPointer(start: p, count: executable.elementCount(of: output)))
    }

    func scalar(_ output: String) -> Float { executable.scalar(output) }
}

/// Values from a seeded generator, so every test is reproducible.
extension RandomSource {
    mutating func uniform(_ count: Int, in range: ClosedRange<Float>) -> [Float] {
        (0..<count).map { _ in range.lowerBound + nextUniform() * (range.upperBound - range.lowerBound) }
    }

    mutating func normals(_ count: Int) -> [Float] {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        defer { p.deallocate() }
        fillNormal(p, count: count)
        return Array(UnsafeBufferPointer(start: p, count: count))
    }
}
