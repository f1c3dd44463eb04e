import Foundation
import XCTest
@testable import VAECore

/// Every file in Fixtures/diagnostics is a model with one mistake and its expected diagnostic in a comment:
///
///     # expect-error: LINE:COLUMN: a substring of the message
///     # expect-hint: a substring of the hint under the caret        (optional)
///
/// A file that cannot hold a comment (the empty file) has its expectation in NAME.expected beside it.
/// Compiling a fixture must give exactly one error (one mistake, one error: no cascade), at that spot,
/// formatted as `path:line:column: error: message`, the source line, and a caret under the column.
final class DiagnosticFixtureTests: XCTestCase {
    struct Expectation {
        var line: Int
        var column: Int
        var message: String
        var hint: String?
    }

    struct Fixture {
        let url: URL
        let expectation: Expectation
        var name: String { url.lastPathComponent }
    }

    static func loadFixtures() throws -> [Fixture] {
        try TestPaths.files(in: TestPaths.diagnosticFixtures, withExtension: "vae").map { url in
            let sidecar = url.deletingPathExtension().appendingPathExtension("expected")
            let source = FileManager.default.fileExists(atPath: sidecar.path) ? sidecar : url
            let text = String(decoding: try Data(contentsOf: source), as: UTF8.self)
            return Fixture(url: url, expectation: try parseExpectation(text, in: source.lastPathComponent))
        }
    }

    static func parseExpectation(_ text: String, in file: String) throws -> Expectation {
        struct Malformed: Error, CustomStringConvertible { let description: String }
        var expectation: Expectation?
        var hint: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if let range = line.range(of: "# expect-error: ") {
                guard expectation == nil else { throw Malformed(description: "\(file): more than one expect-error") }
                let parts = line[range.upperBound...].split(separator: ":", maxSplits: 2)
                guard parts.count == 3, let l = Int(parts[0]), let c = Int(parts[1]) else {
                    throw Malformed(description: "\(file): expect-error must read 'LINE:COLUMN: message'")
                }
                expectation = Expectation(line: l, column: c, message: parts[2].trimmingCharacters(in: .whitespaces))
            } else if let range = line.range(of: "# expect-hint: ") {
                hint = String(line[range.upperBound...])
            }
        }
        guard var expectation else { throw Malformed(description: "\(file) has no '# expect-error:' comment") }
        expectation.hint = hint
        return expectation
    }

    func testThereAreEnoughFixturesAndEachHasAnExpectation() throws {
        let fixtures = try Self.loadFixtures()
        XCTAssertGreaterThanOrEqual(fixtures.count, 55)
        // Every area of the front end is covered (fixture names start with their area).
        for area in ["lex-", "syntax-", "name-", "function-", "shape-", "structure-", "setting-", "prior-",
                     "posterior-", "likelihood-"] {
            XCTAssertTrue(fixtures.contains { $0.name.hasPrefix(area) }, "no fixture for \(area)")
        }
    }

    func testEachFixtureGivesExactlyItsOneError() throws {
        for fixture in try Self.loadFixtures() {
            check(fixture)
        }
    }

    private func check(_ fixture: Fixture) {
        let expected = fixture.expectation
        let failure: CompileFailure
        do {
            _ = try Compiler.compile(path: fixture.url.path)
            return XCTFail("\(fixture.name): compiled without an error; expected \(expected.line):\(expected.column): \(expected.message)")
        } catch let f as CompileFailure {
            failure = f
        } catch {
            return XCTFail("\(fixture.name): failed without a diagnostic: \(error)")
        }
        let errors = failure.diagnostics.filter { $0.severity == .error }
        guard errors.count == 1 else {
            return XCTFail("\(fixture.name): expected exactly one error, got \(errors.count):\n\(failure.formatted())")
        }
        let error = errors[0]
        let source = failure.source
        let (line, column) = source.location(of: error.range.start)
        XCTAssertEqual("\(line):\(column)", "\(expected.line):\(expected.column)",
                       "\(fixture.name): error at the wrong place:\n\(error.formatted(in: source))")
        XCTAssertTrue(error.message.contains(expected.message),
                      "\(fixture.name): message '\(error.message)' does not contain '\(expected.message)'")
        if let hint = expected.hint {
            XCTAssertTrue(error.hint?.contains(hint) ?? false,
                          "\(fixture.name): hint '\(error.hint ?? "none")' does not contain '\(hint)'")
        }

        // The formatted diagnostic: location line, the source line, a caret under the column.
        let formatted = error.formatted(in: source).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        XCTAssertGreaterThanOrEqual(formatted.count, 3, "\(fixture.name): formatted diagnostic too short")
        guard formatted.count >= 3 else { return }
        XCTAssertTrue(formatted[0].hasPrefix("\(fixture.url.path):\(expected.line):\(expected.column): error: "),
                      "\(fixture.name): first line is '\(formatted[0].prefix(200))'")
        XCTAssertEqual(formatted[1], "  " + source.lineText(line), "\(fixture.name): second line is not the source line")
        let caretLine = Array(formatted[2])
        let caret = caretLine.firstIndex(of: "^")
        XCTAssertEqual(caret, 2 + column - 1, "\(fixture.name): the caret is not under column \(column)")
        if let caret {
            XCTAssertTrue(caretLine[..<caret].allSatisfy { $0 == " " }, "\(fixture.name): text before the caret")
        }
        if let hint = expected.hint {
            XCTAssertTrue(formatted.dropFirst(3).contains { $0.contains(hint) }, "\(fixture.name): the hint is not printed")
        }
    }

    /// Recovery resumes at the right place: two mistakes give exactly two errors (the statement after a
    /// line missing its ')' is still read, and so is the block after an unclosed one).
    func testTwoMistakesGiveTwoErrors() throws {
        let sample = try String(contentsOf: TestPaths.samples.appendingPathComponent("mnist.vae"), encoding: .utf8)
        let cases: [(String, [(old: String, new: String)], [String])] = [
            ("a ')' missing at a line's end, then a mistake on the next line",
             [("relu(linear(x, 400))", "relu(linear(x, 400)"), ("z ~ normal(mean", "z normal(mean")],
             ["expected ')'", "expected '=' or '~' after 'z'"]),
            ("an unclosed encoder, then a mistake in the decoder",
             [("logvar: linear(h, 20))\n}", "logvar: linear(h, 20))\n"), ("x ~ bernoulli", "x bernoulli")],
             ["the encoder block is not closed", "expected '=' or '~' after 'x'"]),
            ("a dangling operator before '}', then a missing ':' in the next block",
             [("beta: 1", "beta: 1 +"), ("batch: 128", "batch 128")],
             ["expected an expression, found '}'", "expected ':' after the setting 'batch'"]),
        ]
        for (what, edits, messages) in cases {
            var text = sample
            for edit in edits {
                XCTAssertNotNil(text.range(of: edit.old), "\(what): samples/mnist.vae changed")
                text = text.replacingOccurrences(of: edit.old, with: edit.new)
            }
            do {
                _ = try Compiler.compile(source: SourceFile(path: "two.vae", text: text))
                XCTFail("\(what): compiled")
            } catch {
                XCTAssertEqual(error.diagnostics.map(\.message).count, 2, "\(what):\n\(error.formatted())")
                for (diagnostic, expected) in zip(error.diagnostics, messages) {
                    XCTAssertTrue(diagnostic.message.contains(expected), "\(what): '\(diagnostic.message)' lacks '\(expected)'")
                }
            }
        }
    }

    /// The expectation reader itself: a fixture without an expectation, or a malformed one, is refused.
    func testExpectationCommentsAreReadStrictly() throws {
        let e = try Self.parseExpectation("model m\n# expect-error: 12:3: unknown name 'y'\n# expect-hint: did you mean\n", in: "t")
        XCTAssertEqual(e.line, 12)
        XCTAssertEqual(e.column, 3)
        XCTAssertEqual(e.message, "unknown name 'y'")
        XCTAssertEqual(e.hint, "did you mean")
        XCTAssertThrowsError(try Self.parseExpectation("model m\n", in: "t"))
        XCTAssertThrowsError(try Self.parseExpectation("# expect-error: twelve: oops\n", in: "t"))
    }

    /// Bytes that are not UTF-8 (a binary passed by mistake) are refused with a sentence naming the file,
    /// not a crash.
    func testAFileThatIsNotUTF8IsRefusedWithItsName() throws {
        let folder = try TestPaths.temporaryFolder(for: self)
        let path = folder.appendingPathComponent("garbage.vae").path
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data([0x7F, 0x45, 0x4C, 0x46, 0xFF, 0xFE, 0x00, 0xC3])))
        XCTAssertThrowsError(try Compiler.compile(path: path)) { error in
            let text = (error as? CompileFailure)?.formatted() ?? String(describing: error)
            XCTAssertTrue(text.contains("garbage.vae"), "the message does not name the file: \(text)")
        }
    }
}
