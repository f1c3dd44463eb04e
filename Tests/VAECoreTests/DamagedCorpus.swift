import Foundation
import XCTest
@testable import VAECore

/// Writes Fixtures/damaged: good files made by this vaec (data, a checkpoint after one epoch, a compiled
/// program), then each broken in one way, and the manifest CorpusTests reads. Deterministic: running
/// it twice gives the same bytes.
enum DamagedCorpus {
    struct Entry { var kind: String; var path: String; var expected: String }

    static func generate(into folder: URL) throws {
        let fm = FileManager.default
        for sub in ["data", "resume", "programs"] {
            try? fm.removeItem(at: folder.appendingPathComponent(sub))
            try fm.createDirectory(at: folder.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        var entries: [Entry] = []
        func put(_ kind: String, _ path: String, _ bytes: [UInt8], expecting expected: String) throws {
            let url = folder.appendingPathComponent(path)
            try fm.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(bytes).write(to: url)
            if kind != "" { entries.append(Entry(kind: kind, path: path, expected: expected)) }
        }
        func text(_ s: String) -> [UInt8] { Array(s.utf8) }

        // The good data: 64 binary examples of 8 features.
        var rng = RandomSource(seed: 21)
        let values = (0..<64 * 8).map { _ in rng.nextUniform() < 0.5 ? Float(0) : 1 }
        let npy = try NPYFile.encode(float32: values, dims: [64, 8])
        try put("", "tiny-data.npy", npy, expecting: "")

        // IDX
        let idx = try IDXFile.encode(uint8: values.map { UInt8($0) }, dims: [64, 8])
        try put("data", "data/idx-bad-magic.idx", [0x12, 0x34] + idx.dropFirst(2), expecting: "magic")
        try put("data", "data/idx-truncated.idx", Array(idx.dropLast(37)), expecting: "truncated")
        try put("data", "data/idx-empty.idx", [], expecting: "empty")
        try put("data", "data/idx-wrong-shape.idx", try IDXFile.encode(uint8: Array(repeating: 1, count: 64 * 7), dims: [64, 7]),
                expecting: "input 'x'")
        try put("data", "data/idx-zero-examples.idx", [0, 0, 0x08, 2, 0, 0, 0, 0, 0, 0, 0, 8], expecting: "examples")
        // A header that promises 3 × 2^32−1 dimensions over 16 bytes of data.
        try put("data", "data/idx-absurd-dims.idx", [0, 0, 0x08, 3] + Array(repeating: 0xFF, count: 12) + Array(repeating: 1, count: 16),
                expecting: "idx-absurd-dims.idx")
        try put("data", "data/idx-gzip.idx", [0x1F, 0x8B, 0x08, 0x00] + Array(repeating: 0, count: 16), expecting: "gzip")

        // NPY
        let header = npy.prefix { $0 != UInt8(ascii: "\n") }.count + 1
        try put("data", "data/npy-bad-magic.npy", [0x92, UInt8(ascii: "N"), UInt8(ascii: "P"), UInt8(ascii: "Z")] + npy.dropFirst(4),
                expecting: "npy-bad-magic.npy")
        try put("data", "data/npy-truncated.npy", Array(npy.dropLast(100)), expecting: "truncated")
        var garbled = npy
        for i in 10..<min(30, header) { garbled[i] = UInt8(ascii: "?") }
        try put("data", "data/npy-bad-header.npy", garbled, expecting: "header")
        // The writer refuses non-finite values, so they are patched into the bytes (little-endian F32).
        func patched(_ index: Int, _ value: Float) -> [UInt8] {
            var bytes = npy
            for k in 0..<4 { bytes[header + 4 * index + k] = UInt8(truncatingIfNeeded: value.bitPattern >> (8 * UInt32(k))) }
            return bytes
        }
        try put("data", "data/npy-nan.npy", patched(77, .nan), expecting: "NaN")
        try put("data", "data/npy-inf.npy", patched(300, .infinity), expecting: "Inf")
        try put("data", "data/npy-wrong-shape.npy", try NPYFile.encode(float32: Array(repeating: 0, count: 64 * 9), dims: [64, 9]),
                expecting: "input 'x'")
        try put("test", "data/npy-wrong-shape-test.npy", try NPYFile.encode(float32: Array(repeating: 0, count: 16 * 4), dims: [16, 4]),
                expecting: "input 'x'")
        try put("data", "data/npy-one-axis.npy", try NPYFile.encode(float32: values, dims: [512]), expecting: "first axis")
        var complex = npy
        if let at = (0..<header - 3).first(where: { Array(npy[$0..<$0 + 3]) == Array("<f4".utf8) }) {
            complex.replaceSubrange(at..<at + 3, with: Array("<c8".utf8))
        }
        try put("data", "data/npy-complex-dtype.npy", complex, expecting: "c8")
        try put("data", "data/npy-out-of-range.npy", try NPYFile.encode(float32: values.map { $0 * 255 }, dims: [64, 8]),
                expecting: "outside [0, 1]")

        // CSV
        let row = "1,0,1,0,1,0,1,0\n"
        try put("data", "data/csv-ragged.csv", text(String(repeating: row, count: 20) + "1,0,1\n" + String(repeating: row, count: 20)),
                expecting: "csv-ragged.csv")
        try put("data", "data/csv-text-cell.csv", text(String(repeating: row, count: 20) + "1,0,one,0,1,0,1,0\n"), expecting: "csv-text-cell.csv")
        try put("data", "data/csv-nan.csv", text(String(repeating: row, count: 20) + "1,0,nan,0,1,0,1,0\n"), expecting: "csv-nan.csv")
        try put("data", "data/csv-wrong-shape.csv", text(String(repeating: "1,0,1,0,1,0,1\n", count: 40)), expecting: "input 'x'")
        try put("data", "data/csv-empty.csv", [], expecting: "csv-empty.csv")
        try put("data", "data/csv-binary.csv", Array(npy.prefix(64)), expecting: "csv-binary.csv")

        // Checkpoints: one epoch of tiny.vae, then each file damaged in turn.
        let template = try String(contentsOf: folder.appendingPathComponent("tiny.vae"), encoding: .utf8)
        let dataPath = folder.appendingPathComponent("tiny-data.npy").path
        func trained(_ source: String) throws -> (checkpoint: [UInt8], state: [UInt8]) {
            let program = try Compiler.compile(source: SourceFile(path: "tiny.vae", text: source
                .replacingOccurrences(of: "DATA", with: dataPath).replacingOccurrences(of: "TEST", with: dataPath))).program
            let data = Dataset(path: dataPath, count: 64, features: 8, values: values)
            var options = TrainOptions(); options.epochs = 1
            let trainer = try Trainer(program: program, train: data, test: nil, options: options)
            try trainer.train()
            let temp = fm.temporaryDirectory.appendingPathComponent("vaec-damaged-\(UUID().uuidString)")
            defer { try? fm.removeItem(at: temp) }
            try TrainingState.save(trainer, to: temp.path)
            return ([UInt8](try Data(contentsOf: temp.appendingPathComponent(Checkpoint.fileName))),
                    [UInt8](try Data(contentsOf: temp.appendingPathComponent(TrainingState.fileName))))
        }
        let good = try trained(template)
        func pair(_ name: String, checkpoint: [UInt8]?, state: [UInt8]?, expecting expected: String) throws {
            if let checkpoint { try put("", "resume/\(name)/\(Checkpoint.fileName)", checkpoint, expecting: "") }
            if let state { try put("", "resume/\(name)/\(TrainingState.fileName)", state, expecting: "") }
            try? fm.createDirectory(at: folder.appendingPathComponent("resume/\(name)"), withIntermediateDirectories: true)
            entries.append(Entry(kind: "resume", path: "resume/\(name)", expected: expected))
        }
        var flipped = good.checkpoint; flipped[flipped.count - 5] ^= 0x10
        try pair("checkpoint-bit-flip", checkpoint: flipped, state: good.state, expecting: "damaged")
        try pair("checkpoint-truncated", checkpoint: Array(good.checkpoint.dropLast(40)), state: good.state, expecting: "truncated")
        try pair("checkpoint-empty", checkpoint: [], state: good.state, expecting: "empty")
        try pair("checkpoint-garbage", checkpoint: text("this is not a checkpoint at all\n"), state: good.state, expecting: Checkpoint.fileName)
        var absurd = good.checkpoint; for k in 0..<8 { absurd[k] = 0x7F }
        try pair("checkpoint-absurd-header", checkpoint: absurd, state: good.state, expecting: "header length")
        let parsed = try SafeTensors.parse(good.checkpoint, path: "checkpoint")
        var unsealed = parsed; unsealed.metadata["crc32"] = nil
        try pair("checkpoint-no-checksum", checkpoint: unsealed.encoded(), state: good.state, expecting: "no checksum")
        var plain = parsed; plain.metadata = [:]
        try pair("checkpoint-plain-safetensors", checkpoint: plain.encoded(), state: good.state, expecting: "not a vaec checkpoint")
        var other = parsed; other.metadata["format_version"] = "99"
        try pair("checkpoint-other-version", checkpoint: other.encoded(), state: good.state, expecting: "format 99")
        try pair("checkpoint-swapped", checkpoint: good.state, state: good.checkpoint, expecting: "not a vaec checkpoint")
        try pair("state-missing", checkpoint: good.checkpoint, state: nil, expecting: "does not exist")
        var stateFlipped = good.state; stateFlipped[stateFlipped.count - 9] ^= 0x01
        try pair("state-bit-flip", checkpoint: good.checkpoint, state: stateFlipped, expecting: "damaged")
        try pair("state-truncated", checkpoint: good.checkpoint, state: Array(good.state.prefix(good.state.count / 2)), expecting: "truncated")
        let otherModel = try trained(template.replacingOccurrences(of: "linear(x, 6)", with: "linear(x, 5)"))
        try pair("other-model", checkpoint: otherModel.checkpoint, state: otherModel.state, expecting: "another model")

        // Programs.
        let program = try Compiler.compile(source: SourceFile(path: "tiny.vae", text: template
            .replacingOccurrences(of: "DATA", with: "tiny-data.npy").replacingOccurrences(of: "TEST", with: "tiny-data.npy"))).program
        let vaek = try program.encoded()
        let bodyStart = vaek.firstIndex(of: UInt8(ascii: "{"))!
        try put("program", "programs/truncated.vaek", Array(vaek.dropLast(500)), expecting: "truncated")
        var edited = vaek; edited[bodyStart + 200] ^= 0x20
        try put("program", "programs/edited-byte.vaek", edited, expecting: "checksum")
        try put("program", "programs/other-version.vaek", text("VAEK 99\n") + vaek.drop { $0 != UInt8(ascii: "\n") }.dropFirst(),
                expecting: "another version of vaec")
        let garbage = text("{\"graph\": [1, 2, 3], \"model\": \"no\"}")
        try put("program", "programs/garbage-json.vaek",
                text("VAEK \(CompiledProgram.formatVersion)\ncrc32 \(SealedSafeTensors.hex(CRC32.checksum(garbage))) length \(garbage.count)\n") + garbage,
                expecting: "cannot read")
        try put("program", "programs/empty.vaek", [], expecting: "VAEK header")
        try put("program", "programs/model-source.vaek", text(template), expecting: "VAEK header")
        try put("program", "programs/trailing-bytes.vaek", vaek + text("\n\n"), expecting: "after the program")
        try put("program", "programs/bad-checksum-field.vaek",
                text("VAEK \(CompiledProgram.formatVersion)\ncrc32 xyz length 12\n{}"), expecting: "damaged header")

        var manifest = """
            # Damaged files for CorpusTests (regenerate: VAEC_REGENERATE_DAMAGED=1 swift test --filter CorpusTests/testRegenerateDamagedCorpus).
            # KIND | PATH (relative to this folder) | a piece of the expected error message

            """
        for e in entries { manifest += "\(e.kind) | \(e.path) | \(e.expected)\n" }
        try put("", "manifest.txt", text(manifest), expecting: "")
    }
}
