import Foundation
import XCTest
@testable import VAECore

/// Runs the built `vaec` executable as a user would: exit statuses, the caret diagnostics on stderr,
/// help, and a compiled program written to disk.
final class CLITests: XCTestCase {
    /// `vaec arguments…` as a user runs it (the binary `swift test` builds beside the test bundle).
    func vaec(_ arguments: [String], in directory: URL? = nil) throws -> VAECProcess.Result {
        _ = try VAECProcess.requireBinary()
        return try VAECProcess.run(arguments, in: directory)
    }

    func testCompileWithAMistakePrintsTheLocationTheLineAndACaret() throws {
        let fixture = TestPaths.diagnosticFixtures.appendingPathComponent("function-unknown.vae")
        let result = try vaec(["compile", fixture.path])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertEqual(result.stdout, "")
        let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertGreaterThanOrEqual(lines.count, 4, result.stderr)
        guard lines.count >= 4 else { return }
        XCTAssertEqual(lines[0], "\(fixture.path):9:7: error: unknown function 'relux'")
        XCTAssertEqual(lines[1], "    h = relux(linear(x, 400))")
        XCTAssertEqual(lines[2], "        ^~~~~")
        XCTAssertEqual(lines[3], "  did you mean 'relu'?")
        XCTAssertFalse(result.stderr.contains("Fatal error"), "a stack trace instead of a message")
    }

    func testCompileOfAMissingFileNamesItAndExits1() throws {
        let result = try vaec(["compile", "/nonexistent/model.vae"])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("/nonexistent/model.vae"), result.stderr)
    }

    /// 5000 nested parentheses give the nesting error on the command line too, not a crash.
    func testCompileOfADeeplyNestedFileDoesNotCrash() throws {
        let fixture = TestPaths.diagnosticFixtures.appendingPathComponent("syntax-deeply-nested-parentheses.vae")
        let result = try vaec(["compile", fixture.path])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains(":9:263: error: the expression is nested too deeply"), String(result.stderr.prefix(300)))
    }

    func testHelp() throws {
        let overview = try vaec(["--help"])
        XCTAssertEqual(overview.status, 0, overview.stderr)
        for command in ["compile", "run", "help"] {
            XCTAssertTrue(overview.stdout.contains(command), "vaec --help does not mention \(command)")
        }
        let run = try vaec(["help", "run"])
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertTrue(run.stdout.contains("vaec run"), run.stdout)
        let compile = try vaec(["compile", "--help"])
        XCTAssertEqual(compile.status, 0, compile.stderr)
        XCTAssertTrue(compile.stdout.contains("vaec compile"), compile.stdout)
        let unknownTopic = try vaec(["help", "frobnicate"])
        XCTAssertEqual(unknownTopic.status, 1)
        XCTAssertTrue(unknownTopic.stderr.contains("frobnicate"), unknownTopic.stderr)
    }

    func testAnUnknownCommandExits1WithAMessage() throws {
        let result = try vaec(["frobnicate", "samples/mnist.vae"])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("unknown command 'frobnicate'"), result.stderr)
        XCTAssertEqual(result.stdout, "")
    }

    func testCompileTheSampleWritesAProgram() throws {
        let folder = try TestPaths.temporaryFolder(for: self)
        let output = folder.appendingPathComponent("mnist.vaek")
        let sample = TestPaths.samples.appendingPathComponent("mnist.vae")
        let result = try vaec(["compile", sample.path, "-o", output.path])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("effective β = 1"), result.stdout)
        let program = try CompiledProgram.read(path: output.path)
        XCTAssertEqual(program.model.name, "mnist")
        XCTAssertEqual(program.model.parameters.reduce(0) { $0 + $1.count }, 652_824,
                       "784·400+400 + 2·(400·20+20) + 20·400+400 + 400·784+784")
        // The same program the library compiles in-process.
        XCTAssertEqual(program.graph.nodes, try Compiler.compile(path: sample.path).program.graph.nodes)
    }
}
