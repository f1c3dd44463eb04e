import Foundation
import XCTest
@testable import VAECore

/// Every malformed model (Fixtures/diagnostics) and every damaged data, checkpoint and program file
/// (Fixtures/damaged) goes through the real `vaec` binary: each must end with exit status 1 and a
/// message on stderr, never with a signal (a crash or a trap).
///
/// Fixtures/damaged/manifest.txt lists the damaged cases, one a line: `KIND | PATH | EXPECTED`, where
/// KIND says how the file is fed to vaec (`data`/`test`: as the train/test data of tiny.vae;
/// `resume`: a folder given to `--resume`; `program`: a .vaek given to `vaec run`) and EXPECTED is a
/// piece of the message. The files are small and committed; `VAEC_REGENERATE_DAMAGED=1 swift test
/// --filter CorpusTests/testRegenerateDamagedCorpus` rewrites them from real files made by this vaec.
final class CorpusTests: XCTestCase {
    static let damaged = TestPaths.fixtures.appendingPathComponent("damaged")

    struct Case {
        var kind: String
        var path: String
        var expected: String
    }

    static func manifest() throws -> [Case] {
        let text = try String(contentsOf: damaged.appendingPathComponent("manifest.txt"), encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            if line.hasPrefix("#") || line.allSatisfy(\.isWhitespace) { return nil }
            let parts = line.split(separator: "|", maxSplits: 2).map { $0.trimmingCharacters(in: .whitespaces) }
            return parts.count == 3 ? Case(kind: parts[0], path: parts[1], expected: parts[2]) : nil
        }
    }

    static func assertCleanFailure(_ result: VAECProcess.Result, _ label: String, expecting expected: String? = nil,
                                   file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(result.reason, .exit, "\(label): ended by a signal\n\(result.stderr)", file: file, line: line)
        XCTAssertEqual(result.status, 1, "\(label): exit status \(result.status)\n\(result.stdout)\n\(result.stderr)", file: file, line: line)
        XCTAssertFalse(result.stderr.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(label): no message", file: file, line: line)
        XCTAssertFalse(result.stderr.contains("Fatal error") || result.stderr.contains("Backtrac"), "\(label): \(result.stderr)", file: file, line: line)
        if let expected {
            XCTAssertTrue(result.stderr.contains(expected), "\(label): expected '\(expected)' in: \(result.stderr)", file: file, line: line)
        }
    }

    func testEveryMalformedModelFailsWithStatus1AndAMessage() throws {
        let out = try TestPaths.temporaryFolder(for: self)
        let models = try TestPaths.files(in: TestPaths.diagnosticFixtures, withExtension: "vae")
        XCTAssertGreaterThanOrEqual(models.count, 50)
        for model in models {
            let result = try VAECProcess.run(["compile", model.path, "-o", out.appendingPathComponent("out.vaek").path])
            Self.assertCleanFailure(result, model.lastPathComponent, expecting: model.lastPathComponent)
        }
    }

    func testEveryDamagedFileFailsWithStatus1AndAMessageNamingIt() throws {
        let cases = try Self.manifest()
        XCTAssertGreaterThanOrEqual(cases.count, 20)
        let work = try TestPaths.temporaryFolder(for: self)
        let tiny = try String(contentsOf: Self.damaged.appendingPathComponent("tiny.vae"), encoding: .utf8)
        let data = Self.damaged.appendingPathComponent("tiny-data.npy").path
        for (index, c) in cases.enumerated() {
            let fixture = Self.damaged.appendingPathComponent(c.path)
            XCTAssertTrue(FileManager.default.fileExists(atPath: fixture.path), "\(c.path) is missing")
            let folder = work.appendingPathComponent("case\(index)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let model = folder.appendingPathComponent("tiny.vae")
            var arguments = ["run", model.path, "--out", folder.appendingPathComponent("out").path, "--epochs", "1"]
            var source = tiny.replacingOccurrences(of: "DATA", with: data).replacingOccurrences(of: "TEST", with: data)
            switch c.kind {
            case "data": source = tiny.replacingOccurrences(of: "DATA", with: fixture.path).replacingOccurrences(of: "TEST", with: data)
            case "test": source = tiny.replacingOccurrences(of: "DATA", with: data).replacingOccurrences(of: "TEST", with: fixture.path)
            case "resume": arguments += ["--resume", fixture.path]
            case "program": arguments[1] = fixture.path
            default: XCTFail("\(c.path): unknown kind '\(c.kind)'")
            }
            try source.write(to: model, atomically: true, encoding: .utf8)
            let result = try VAECProcess.run(arguments)
            Self.assertCleanFailure(result, c.path, expecting: c.expected)
            // The message names the file (for a folder, the file in it that is wrong).
            XCTAssertTrue(result.stderr.contains(fixture.lastPathComponent), "\(c.path): the message does not name the file: \(result.stderr)")
        }
    }

    /// Programs damaged in their meaning but sealed with a valid checksum, made from a program this
    /// vaec just compiled (so they follow the current format): the reader's structural validation
    /// must refuse each before the runtime touches it.
    func testSealedButInconsistentProgramsAreRefused() throws {
        let work = try TestPaths.temporaryFolder(for: self)
        let tiny = try String(contentsOf: Self.damaged.appendingPathComponent("tiny.vae"), encoding: .utf8)
            .replacingOccurrences(of: "DATA", with: Self.damaged.appendingPathComponent("tiny-data.npy").path)
            .replacingOccurrences(of: "TEST", with: Self.damaged.appendingPathComponent("tiny-data.npy").path)
        let program = try Compiler.compile(source: SourceFile(path: "tiny.vae", text: tiny)).program
        let dense = try XCTUnwrap(program.graph.nodes.firstIndex { $0.op == .dense })
        let edits: [(String, String, (inout [String: Any]) -> Void)] = [
            ("operand-out-of-range", "invalid operands", { json in Self.editNode(&json, dense) { $0["operands"] = [0, 99_999] } }),
            ("operand-forward", "invalid operands", { json in Self.editNode(&json, dense) { $0["operands"] = [dense, dense] } }),
            ("shape-mismatch", "inconsistent shape", { json in Self.editNode(&json, dense) { node in
                var shape = node["shape"] as! [String: Any]; shape["dims"] = [7]; node["shape"] = shape } }),
            ("huge-shape", "invalid shape", { json in Self.editNode(&json, dense) { node in
                var shape = node["shape"] as! [String: Any]; shape["dims"] = [16_777_216, 16_777_216, 16_777_216]; node["shape"] = shape } }),
            ("no-loss", "loss", { json in
                var graph = json["graph"] as! [String: Any]
                graph["outputNames"] = (graph["outputNames"] as! [String]).map { $0 == "loss" ? "lost" : $0 }
                json["graph"] = graph }),
            ("unpaired-outputs", "outputs", { json in
                var graph = json["graph"] as! [String: Any]
                graph["outputValues"] = Array((graph["outputValues"] as! [Int]).dropLast(3))
                json["graph"] = graph }),
            ("huge-batch", "batch", { json in
                var model = json["model"] as! [String: Any]; var train = model["train"] as! [String: Any]
                train["batch"] = Int.max; model["train"] = train; json["model"] = model }),
            ("unknown-parameter", "parameter", { json in
                var model = json["model"] as! [String: Any]
                model["parameters"] = Array((model["parameters"] as! [Any]).dropFirst()); json["model"] = model }),
        ]
        for (name, expected, edit) in edits {
            var json = try JSONSerialization.jsonObject(with: Data(try program.encoded().drop { $0 != UInt8(ascii: "{") })) as! [String: Any]
            edit(&json)
            let body = [UInt8](try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys]))
            let header = "VAEK \(CompiledProgram.formatVersion)\ncrc32 \(SealedSafeTensors.hex(CRC32.checksum(body))) length \(body.count)\n"
            let path = work.appendingPathComponent("\(name).vaek")
            try Data(Array(header.utf8) + body).write(to: path)
            XCTAssertThrowsError(try CompiledProgram.read(path: path.path), name) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(name): \(error)")
            }
            let result = try VAECProcess.run(["run", path.path, "--epochs", "1", "--out", work.appendingPathComponent("out").path])
            Self.assertCleanFailure(result, name, expecting: "\(name).vaek")
        }
    }

    static func editNode(_ json: inout [String: Any], _ id: Int, _ edit: (inout [String: Any]) -> Void) {
        var graph = json["graph"] as! [String: Any]
        var nodes = graph["nodes"] as! [[String: Any]]
        edit(&nodes[id])
        graph["nodes"] = nodes
        json["graph"] = graph
    }

    // MARK: regenerating the committed files

    func testRegenerateDamagedCorpus() throws {
        guard ProcessInfo.processInfo.environment["VAEC_REGENERATE_DAMAGED"] == "1" else {
            throw XCTSkip("set VAEC_REGENERATE_DAMAGED=1 to rewrite Fixtures/damaged")
        }
        try DamagedCorpus.generate(into: Self.damaged)
    }
}
