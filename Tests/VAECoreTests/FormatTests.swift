import Foundation
import XCTest
@testable import VAECore

final class FormatTests: XCTestCase {
    private var tempDir: URL!

    override func setUpWithError() throws {
        tempDir = FileManager.default.temporaryDirectory
            .appendingPathComponent("vaec-format-tests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: tempDir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let tempDir { try? FileManager.default.removeItem(at: tempDir) }
    }

    private func tempPath(_ name: String) -> String { tempDir.appendingPathComponent(name).path }

    private static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()  // VAECoreTests
        .deletingLastPathComponent()  // Tests
        .deletingLastPathComponent()  // package root

    // MARK: - Byte builders

    private func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
    private func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8((v >> (8 * UInt64($0))) & 0xFF) } }
    private func f32le(_ values: [Float]) -> [UInt8] {
        values.flatMap { v -> [UInt8] in let u = v.bitPattern; return (0..<4).map { UInt8((u >> (8 * UInt32($0))) & 0xFF) } }
    }
    private func f64le(_ values: [Double]) -> [UInt8] {
        values.flatMap { v -> [UInt8] in let u = v.bitPattern; return (0..<8).map { UInt8((u >> (8 * UInt64($0))) & 0xFF) } }
    }

    /// An IDX file: magic 0x0000TTDD, big-endian dims, then `data` verbatim.
    private func idx(type: UInt8, dims: [UInt32], data: [UInt8]) -> [UInt8] {
        [0, 0, type, UInt8(dims.count)] + dims.flatMap(be32) + data
    }

    /// A safetensors file with a hand-written JSON header (padded with spaces to a multiple of 8).
    private func st(_ json: String, data: [UInt8] = []) -> [UInt8] {
        var header = Array(json.utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        return le64(UInt64(header.count)) + header + data
    }

    /// A .npy file with a hand-written header dict.
    private func npy(_ dict: String, major: UInt8 = 1, data: [UInt8] = []) -> [UInt8] {
        var header = Array(dict.utf8)
        let prelude = major == 1 ? 10 : 12
        while (prelude + header.count + 1) % 64 != 0 { header.append(0x20) }
        header.append(0x0A)
        var out: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, major, 0]
        let n = header.count
        for k in 0..<(prelude - 8) { out.append(UInt8((n >> (8 * k)) & 0xFF)) }
        return out + header + data
    }

    // MARK: - Checksums and atomic writes

    func testCRC32KnownValues() {
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF4_3926)
        XCTAssertEqual(CRC32.checksum([UInt8]()), 0)
        XCTAssertEqual(CRC32.checksum(Array("The quick brown fox jumps over the lazy dog".utf8)), 0x414F_A339)
        let bytes = Array("123456789".utf8)
        XCTAssertEqual(bytes.withUnsafeBytes { CRC32.checksum($0) }, 0xCBF4_3926)
        // Incremental use gives the same answer as one pass.
        let first = bytes[0..<4].withUnsafeBytes { CRC32.update(0, $0) }
        XCTAssertEqual(bytes[4...].withUnsafeBytes { CRC32.update(first, $0) }, 0xCBF4_3926)
    }

    func testAdler32KnownValues() {
        XCTAssertEqual(Adler32.checksum(Array("Wikipedia".utf8)), 0x11E6_0398)
        XCTAssertEqual(Adler32.checksum([]), 1)
        // Long input exercises the modulo batching: 100 000 bytes of 0xFF, checked against the naive definition.
        let long = [UInt8](repeating: 0xFF, count: 100_000)
        var a: UInt64 = 1, b: UInt64 = 0
        for x in long { a = (a + UInt64(x)) % 65521; b = (b + a) % 65521 }
        XCTAssertEqual(Adler32.checksum(long), UInt32(b << 16 | a))
    }

    func testAtomicFileCreatesParentsReplacesAndLeavesNoTemp() throws {
        let path = tempPath("a/b/c/out.bin")
        try AtomicFile.write([1, 2, 3], to: path)
        XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: path))), [1, 2, 3])
        try AtomicFile.write([9], to: path)
        XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: path))), [9])
        try AtomicFile.write([], to: path)
        XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: path))), [])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: tempPath("a/b/c"))
        XCTAssertEqual(leftovers, ["out.bin"])
    }

    func testAtomicFileFailuresAreFormatErrors() throws {
        // Target is an existing directory.
        let dir = tempPath("isdir")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        XCTAssertThrowsError(try AtomicFile.write([1], to: dir)) { error in
            XCTAssertTrue("\(error)".contains(dir), "\(error)")
            XCTAssertTrue(error is FormatError)
        }
        // Parent is a regular file.
        let file = tempPath("plainfile")
        try AtomicFile.write([1], to: file)
        XCTAssertThrowsError(try AtomicFile.write([1], to: file + "/child")) { error in
            XCTAssertTrue(error is FormatError)
            XCTAssertTrue("\(error)".contains("not a directory"), "\(error)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tempDir.path).sorted(), ["isdir", "plainfile"])
    }

    // MARK: - IDX

    func testIDXRoundTripUInt8() throws {
        let path = tempPath("round.idx")
        let values: [UInt8] = (0..<24).map { UInt8($0 * 10) }
        try IDXFile.write(uint8: values, dims: [2, 3, 4], to: path)
        let f = try IDXFile.read(path: path)
        XCTAssertEqual(f.dims, [2, 3, 4])
        XCTAssertEqual(f.values, values.map(Float.init))
        let raw = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual(Array(raw[0..<8]), [0, 0, 8, 3, 0, 0, 0, 2])
        XCTAssertEqual(raw.count, 4 + 12 + 24)

        XCTAssertThrowsError(try IDXFile.write(uint8: [1, 2, 3], dims: [2, 2], to: tempPath("bad.idx"))) { error in
            XCTAssertTrue("\(error)".contains("bad.idx"), "\(error)")
        }
        XCTAssertThrowsError(try IDXFile.write(uint8: [], dims: [], to: tempPath("bad2.idx")))
        XCTAssertFalse(FileManager.default.fileExists(atPath: tempPath("bad.idx")))
    }

    func testIDXOtherElementTypes() throws {
        let int8 = try IDXFile.parse(idx(type: 0x09, dims: [3], data: [0xFF, 0x80, 0x7F]), path: "i8")
        XCTAssertEqual(int8.values, [-1, -128, 127])

        let int16 = try IDXFile.parse(idx(type: 0x0B, dims: [2], data: [0xFF, 0xFE, 0x01, 0x00]), path: "i16")
        XCTAssertEqual(int16.values, [-2, 256])

        let int32 = try IDXFile.parse(idx(type: 0x0C, dims: [2], data: be32(UInt32(bitPattern: -70000)) + be32(5)), path: "i32")
        XCTAssertEqual(int32.values, [-70000, 5])

        let f32 = try IDXFile.parse(idx(type: 0x0D, dims: [1, 2], data: be32(Float(1.5).bitPattern) + be32(Float(-0.25).bitPattern)), path: "f32")
        XCTAssertEqual(f32.dims, [1, 2])
        XCTAssertEqual(f32.values, [1.5, -0.25])

        let d = Double(3.25).bitPattern
        let f64 = try IDXFile.parse(idx(type: 0x0E, dims: [1], data: be32(UInt32(d >> 32)) + be32(UInt32(d & 0xFFFF_FFFF))), path: "f64")
        XCTAssertEqual(f64.values, [3.25])
    }

    func testRealMNISTFile() throws {
        let url = Self.packageRoot.appendingPathComponent("samples/data/mnist5k-test-images-idx3-ubyte")
        let f = try IDXFile.read(path: url.path)
        XCTAssertEqual(f.dims, [1000, 28, 28])
        XCTAssertEqual(f.values.count, 1000 * 28 * 28)
        XCTAssertTrue(f.values.allSatisfy { $0 >= 0 && $0 <= 255 && $0 == $0.rounded() })
        XCTAssertEqual(f.values.max(), 255)
        let mean = f.values.reduce(0, +) / Float(f.values.count)
        XCTAssertGreaterThan(mean, 10)  // real digits, not an all-zero file
        XCTAssertLessThan(mean, 80)

        let labels = try IDXFile.read(path: Self.packageRoot.appendingPathComponent("samples/data/mnist5k-test-labels-idx1-ubyte").path)
        XCTAssertEqual(labels.dims, [1000])
        XCTAssertTrue(labels.values.allSatisfy { (0...9).contains(Int($0)) })
    }

    // MARK: - SafeTensors

    func testSafeTensorsRoundTrip() throws {
        let st = SafeTensors(
            tensors: [
                "encoder.w": .init(shape: [2, 3], values: [1, -2, 3.5, 4, 5, 6e-8]),
                "encoder.b": .init(shape: [3], values: [0.1, 0.2, 0.3]),
                "scalar": .init(shape: [], values: [42]),
                "empty": .init(shape: [0, 5], values: []),
                "quote\"d\\name\n": .init(shape: [1], values: [-1]),
            ],
            metadata: ["format": "pt", "note": "line1\nline2 \"quoted\" \\ tab\t ünïcødé ∑ 🚀", "\u{1}ctl": "x"])
        let bytes = st.encoded()
        XCTAssertEqual(bytes, st.encoded(), "encoding must be deterministic")
        let n = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual(n % 8, 0, "header padded to a multiple of 8")
        XCTAssertEqual(bytes.count, 8 + n + 4 * (6 + 3 + 1 + 0 + 1))

        // The JSON is valid, sorted, and data is laid out in name order.
        let json = String(decoding: bytes[8..<(8 + n)], as: UTF8.self)
        XCTAssertTrue(json.hasPrefix("{\"__metadata__\":{"), json)
        let b = try XCTUnwrap(json.range(of: "\"encoder.b\""))
        let w = try XCTUnwrap(json.range(of: "\"encoder.w\""))
        XCTAssertLessThan(b.lowerBound, w.lowerBound)
        XCTAssertTrue(json.contains("\"encoder.b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}"), json)
        XCTAssertNotNil(try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])))

        let back = try SafeTensors.parse(bytes, path: "mem")
        XCTAssertEqual(back.tensors, st.tensors)
        XCTAssertEqual(back.metadata, st.metadata)

        let path = tempPath("dir/model.safetensors")
        try st.write(to: path)
        try st.write(to: path)  // overwrite
        let read = try SafeTensors.read(path: path)
        XCTAssertEqual(read.tensors, st.tensors)
        XCTAssertEqual(read.metadata, st.metadata)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tempPath("dir")), ["model.safetensors"])

        // No tensors, no metadata.
        let none = SafeTensors()
        XCTAssertEqual(try SafeTensors.parse(none.encoded(), path: "none").tensors, [:])
    }

    func testSafeTensorsReadsForeignLayout() throws {
        // Hugging Face's key order and spacing, tensors stored out of name order, metadata last.
        let json = #"{"z": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "a": {"shape": [1, 1], "dtype":"F32", "data_offsets": [8, 12]}, "__metadata__": {"format": "pt"}}"#
        let f = try SafeTensors.parse(st(json, data: f32le([1, 2, 3])), path: "hf")
        XCTAssertEqual(f.tensors["z"], .init(shape: [2], values: [1, 2]))
        XCTAssertEqual(f.tensors["a"], .init(shape: [1, 1], values: [3]))
        XCTAssertEqual(f.metadata, ["format": "pt"])
    }

    func testSafeTensorsWriteRejectsInconsistentContents() {
        let cases: [(SafeTensors, String)] = [
            (SafeTensors(tensors: ["w": .init(shape: [2, 2], values: [1, 2, 3])]), "shape"),
            (SafeTensors(tensors: ["w": .init(shape: [2], values: [1, .nan])]), "NaN"),
            (SafeTensors(tensors: ["w": .init(shape: [1], values: [.infinity])]), "Inf"),
            (SafeTensors(tensors: ["__metadata__": .init(shape: [1], values: [1])]), "__metadata__"),
            (SafeTensors(tensors: ["w": .init(shape: [-1], values: [])]), "negative"),
        ]
        for (i, (st, word)) in cases.enumerated() {
            let path = tempPath("reject\(i).safetensors")
            XCTAssertThrowsError(try st.write(to: path)) { error in
                XCTAssertTrue(error is FormatError)
                XCTAssertTrue("\(error)".contains(path) && "\(error)".contains(word), "\(error)")
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: path))
        }
    }

    // MARK: - NPY

    func testNPYRoundTrip() throws {
        let path = tempPath("x.npy")
        let values: [Float] = (0..<12).map { Float($0) * 0.5 - 2 }
        try NPYFile.write(float32: values, dims: [3, 4], to: path)
        let raw = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual(Array(raw[0..<8]), [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        let headerLength = Int(raw[8]) | Int(raw[9]) << 8
        XCTAssertEqual((10 + headerLength) % 64, 0)
        XCTAssertEqual(raw[10 + headerLength - 1], 0x0A)
        XCTAssertTrue(String(decoding: raw[10..<(10 + headerLength)], as: UTF8.self)
            .hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }"))
        let f = try NPYFile.read(path: path)
        XCTAssertEqual(f.dims, [3, 4])
        XCTAssertEqual(f.values, values)

        try NPYFile.write(float32: [7, 8], dims: [2], to: path)
        XCTAssertEqual(try NPYFile.read(path: path).dims, [2])
        try NPYFile.write(float32: [7], dims: [], to: path)
        XCTAssertEqual(try NPYFile.read(path: path).values, [7])
        XCTAssertThrowsError(try NPYFile.write(float32: [1, 2, 3], dims: [2], to: tempPath("bad.npy")))
    }

    func testNPYVersionsAndDTypes() throws {
        let f8 = try NPYFile.parse(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", data: f64le([1.25, -3])), path: "f8")
        XCTAssertEqual(f8.values, [1.25, -3])
        let u1 = try NPYFile.parse(npy("{'descr': '|u1', 'fortran_order': False, 'shape': (1, 3), }", data: [0, 128, 255]), path: "u1")
        XCTAssertEqual(u1.dims, [1, 3])
        XCTAssertEqual(u1.values, [0, 128, 255])
        let u1le = try NPYFile.parse(npy("{\"descr\": \"<u1\", \"shape\": (3,), \"fortran_order\": False}", data: [1, 2, 3]), path: "u1le")
        XCTAssertEqual(u1le.values, [1, 2, 3])
        let v2 = try NPYFile.parse(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), }", major: 2, data: f32le([5, 6])), path: "v2")
        XCTAssertEqual(v2.dims, [2, 1])
        XCTAssertEqual(v2.values, [5, 6])
        let v3 = try NPYFile.parse(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", major: 3, data: f32le([9])), path: "v3")
        XCTAssertEqual(v3.values, [9])
        // Python 2 era long integers.
        let py2 = try NPYFile.parse(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1L, 2L), }", data: f32le([1, 2])), path: "py2")
        XCTAssertEqual(py2.dims, [1, 2])
    }

    // MARK: - CSV

    func testCSVWithAndWithoutHeader() throws {
        let plain = try CSVMatrix.parse(text: "1,2,3\n4,5,6\n", path: "plain.csv")
        XCTAssertEqual(plain.dims, [2, 3])
        XCTAssertEqual(plain.values, [1, 2, 3, 4, 5, 6])
        XCTAssertNil(plain.header)

        let withHeader = try CSVMatrix.parse(text: "\u{FEFF}x, \"y, z\",w\r\n1.5, -2e-3 ,+7\r\n\r\n\"3\",4,5", path: "h.csv")
        XCTAssertEqual(withHeader.dims, [2, 3])
        XCTAssertEqual(withHeader.header, ["x", "y, z", "w"])
        XCTAssertEqual(withHeader.values, [1.5, -0.002, 7, 3, 4, 5])

        let path = tempPath("m.csv")
        try AtomicFile.write(Array("a\n1\n2\n3\n".utf8), to: path)
        let single = try CSVMatrix.read(path: path)
        XCTAssertEqual(single.dims, [3, 1])
        XCTAssertEqual(single.header, ["a"])
    }

    // MARK: - Damaged inputs

    private enum Reader: String { case idx, safetensors, npy, csv }

    private func read(_ reader: Reader, _ path: String) throws {
        switch reader {
        case .idx: _ = try IDXFile.read(path: path)
        case .safetensors: _ = try SafeTensors.read(path: path)
        case .npy: _ = try NPYFile.read(path: path)
        case .csv: _ = try CSVMatrix.read(path: path)
        }
    }

    func testDamagedInputsThrowClearFormatErrors() throws {
        let f32Header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
        let goodST = #"{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}"#
        let deep = String(repeating: "(", count: 200) + String(repeating: ")", count: 200)
        let cases: [(name: String, reader: Reader, bytes: [UInt8], words: [String])] = [
            // IDX
            ("empty", .idx, [], ["empty"]),
            ("short", .idx, [0, 0, 8], ["too short"]),
            ("truncated-header", .idx, [0, 0, 8, 3, 0, 0, 0, 1], ["truncated", "header"]),
            ("bad-magic", .idx, [1, 2, 8, 1, 0, 0, 0, 1, 0], ["magic"]),
            ("gzip", .idx, [0x1F, 0x8B, 8, 0, 0, 0], ["gzip"]),
            ("type-code", .idx, idx(type: 0x0A, dims: [1], data: [0]), ["type code", "0x0A"]),
            ("zero-dims", .idx, [0, 0, 8, 0], ["0 dimensions"]),
            ("nine-dims", .idx, idx(type: 8, dims: Array(repeating: 1, count: 9), data: [0]), ["9 dimensions"]),
            ("dim-zero", .idx, idx(type: 8, dims: [3, 0], data: []), ["size 0"]),
            ("huge-dims", .idx, idx(type: 8, dims: [65536, 65536], data: [0]), ["absurd"]),
            ("overflow-dims", .idx, idx(type: 0x0E, dims: [0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF], data: []), ["absurd"]),
            ("truncated-data", .idx, idx(type: 8, dims: [10, 28, 28], data: [UInt8](repeating: 0, count: 1234)), ["truncated", "10×28×28", "1234"]),
            ("trailing", .idx, idx(type: 8, dims: [2], data: [1, 2, 3]), ["trailing"]),
            ("nan-f32", .idx, idx(type: 0x0D, dims: [4], data: be32(0) + be32(0) + be32(Float.nan.bitPattern) + be32(0)), ["NaN", "element 2"]),
            ("inf-f64", .idx, idx(type: 0x0E, dims: [1], data: be32(0x7FF0_0000) + be32(0)), ["Inf", "element 0"]),
            ("range-f64", .idx, idx(type: 0x0E, dims: [1], data: be32(UInt32(Double(1e300).bitPattern >> 32)) + be32(0)), ["range"]),
            // safetensors
            ("empty", .safetensors, [], ["empty"]),
            ("short", .safetensors, [1, 2, 3, 4, 5], ["too short"]),
            ("truncated-header", .safetensors, le64(1000) + Array("{\"a\":".utf8), ["truncated", "header"]),
            ("absurd-header", .safetensors, le64(UInt64.max) + [0x7B], ["absurd", "header length"]),
            ("zero-header", .safetensors, le64(0), ["too small"]),
            ("bad-json", .safetensors, st(#"{"w": {"dtype": "F32", "#), ["JSON"]),
            ("json-array", .safetensors, st("[1, 2]"), ["JSON"]),
            ("not-utf8", .safetensors, le64(8) + [0x7B, 0xFF, 0xFE, 0x7D, 0x20, 0x20, 0x20, 0x20], ["UTF-8"]),
            ("entry-not-object", .safetensors, st(#"{"w": 5}"#), ["'w'"]),
            ("no-dtype", .safetensors, st(#"{"w": {"shape": [2], "data_offsets": [0, 8]}}"#, data: f32le([1, 2])), ["dtype"]),
            ("wrong-dtype", .safetensors, st(#"{"w": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0]), ["'w'", "F16", "F32 only"]),
            ("wrong-dtype-f64", .safetensors, st(#"{"w": {"dtype": "F64", "shape": [1], "data_offsets": [0, 8]}}"#, data: f64le([1])), ["F64"]),
            ("negative-shape", .safetensors, st(#"{"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}"#, data: f32le([1, 2])), ["shape", "-2"]),
            ("bool-shape", .safetensors, st(#"{"w": {"dtype": "F32", "shape": [true], "data_offsets": [0, 4]}}"#, data: f32le([1])), ["shape", "true"]),
            ("fractional-shape", .safetensors, st(#"{"w": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 8]}}"#, data: f32le([1, 2])), ["shape", "2.5"]),
            ("string-offsets", .safetensors, st(#"{"w": {"dtype": "F32", "shape": [2], "data_offsets": ["0", 8]}}"#, data: f32le([1, 2])), ["data_offsets"]),
            ("three-offsets", .safetensors, st(#"{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4, 8]}}"#, data: f32le([1, 2])), ["data_offsets"]),
            ("reversed-offsets", .safetensors, st(#"{"w": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}}"#, data: f32le([1, 2])), ["begin"]),
            ("size-mismatch", .safetensors, st(#"{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}"#, data: f32le([1])), ["mismatch", "'w'"]),
            ("absurd-shape", .safetensors, st(#"{"w": {"dtype": "F32", "shape": [1099511627776, 1099511627776], "data_offsets": [0, 4]}}"#, data: f32le([1])), ["absurd"]),
            ("truncated-data", .safetensors, st(goodST, data: f32le([1])), ["truncated", "'w'"]),
            ("overlap", .safetensors, st(#"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#, data: f32le([1, 2, 3])), ["overlap", "'a'", "'b'"]),
            ("gap", .safetensors, st(#"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}"#, data: f32le([1, 2, 3])), ["gap"]),
            ("trailing", .safetensors, st(goodST, data: f32le([1, 2, 3])), ["trailing"]),
            ("nan", .safetensors, st(goodST, data: f32le([1, .nan])), ["'w'", "NaN"]),
            ("inf", .safetensors, st(goodST, data: f32le([-.infinity, 1])), ["'w'", "Inf"]),
            ("metadata-not-string", .safetensors, st(#"{"__metadata__": {"epoch": 3}}"#), ["metadata", "epoch"]),
            ("duplicate-key", .safetensors, st(#"{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}"#, data: f32le([1, 2])), ["'w'", "more than once"]),
            ("deep-json", .safetensors, st("{\"a\":" + String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000) + "}"), ["JSON"]),
            // npy
            ("empty", .npy, [], ["empty"]),
            ("bad-magic", .npy, Array("NUMPY\u{1}\0".utf8) + [0, 0, 0, 0], ["magic"]),
            ("npz", .npy, [0x50, 0x4B, 0x03, 0x04, 0, 0, 0, 0], ["zip"]),
            ("truncated-prelude", .npy, [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0], ["truncated"]),
            ("version", .npy, npy(f32Header, major: 4, data: f32le([1, 2])), ["version 4.0"]),
            ("truncated-header", .npy, Array(npy(f32Header, data: f32le([1, 2]))[0..<40]), ["truncated", "header"]),
            ("malformed-dict", .npy, npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,", data: f32le([1, 2])), ["malformed"]),
            ("not-a-dict", .npy, npy("[1, 2]", data: f32le([1, 2])), ["malformed"]),
            ("big-endian", .npy, npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", data: f32le([1, 2])), ["'>f4'", "dtype"]),
            ("int64", .npy, npy("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", data: [UInt8](repeating: 0, count: 8)), ["'<i8'"]),
            ("structured", .npy, npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", data: f32le([1])), ["structured"]),
            ("fortran", .npy, npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", data: f32le([1, 2])), ["Fortran"]),
            ("no-shape", .npy, npy("{'descr': '<f4', 'fortran_order': False, }", data: f32le([1, 2])), ["shape"]),
            ("negative-shape", .npy, npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", data: f32le([1, 2])), ["shape", "-2"]),
            ("float-shape", .npy, npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,), }", data: f32le([1, 2])), ["malformed"]),
            ("huge-shape", .npy, npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }"), ["absurd"]),
            ("deep-nesting", .npy, npy("{'descr': '<f4', 'fortran_order': False, 'shape': \(deep), }"), ["nesting"]),
            ("truncated-data", .npy, npy(f32Header, data: f32le([1])), ["truncated", "8 bytes", "4 bytes"]),
            ("trailing", .npy, npy(f32Header, data: f32le([1, 2, 3])), ["trailing"]),
            ("nan", .npy, npy(f32Header, data: f32le([1, .nan])), ["NaN", "element 1"]),
            // csv
            ("empty", .csv, [], ["empty"]),
            ("blank", .csv, Array("\n  \n\r\n".utf8), ["empty"]),
            ("ragged", .csv, Array("a,b,c\n1,2,3\n4,5\n".utf8), ["line 3", "2 columns", "3"]),
            ("ragged-long", .csv, Array("1,2\n3,4,5\n".utf8), ["line 2", "3 columns"]),
            ("not-a-number", .csv, Array("1,2\n3,abc\n".utf8), ["line 2", "column 2", "'abc'", "not a number"]),
            ("header-only", .csv, Array("x,y\n".utf8), ["no data rows"]),
            ("nan", .csv, Array("1,2\nnan,4\n".utf8), ["line 2", "NaN"]),
            ("overflow", .csv, Array("1e50,2\n".utf8), ["line 1", "range"]),
            ("empty-field", .csv, Array("1,2\n3,\n".utf8), ["line 2", "column 2", "empty"]),
            ("unterminated-quote", .csv, Array("1,\"2\n".utf8), ["line 1", "quote"]),
            ("binary", .csv, idx(type: 8, dims: [2], data: [1, 2]), ["binary"]),
        ]

        var seen = Set<String>()
        for c in cases {
            let fileName = "damaged-\(c.reader.rawValue)-\(c.name).bin"
            XCTAssertTrue(seen.insert(fileName).inserted, "duplicate case \(fileName)")
            let path = tempPath(fileName)
            try Data(c.bytes).write(to: URL(fileURLWithPath: path))
            do {
                try read(c.reader, path)
                XCTFail("\(fileName): expected a FormatError, but it read successfully")
            } catch let error as FormatError {
                let text = error.description
                if ProcessInfo.processInfo.environment["VAEC_SHOW_FORMAT_ERRORS"] != nil { print("[\(c.reader)/\(c.name)] \(error.problem)") }
                XCTAssertEqual(error.path, path)
                XCTAssertTrue(text.hasPrefix(path + ": "), "\(fileName): \(text)")
                for word in c.words {
                    XCTAssertTrue(text.lowercased().contains(word.lowercased()), "\(fileName): expected '\(word)' in: \(text)")
                }
            } catch {
                XCTFail("\(fileName): threw a non-FormatError \(error)")
            }
        }
    }

    func testMissingAndDirectoryPaths() {
        let missing = tempPath("no-such-file")
        let readers: [(String) throws -> Void] = [
            { _ = try IDXFile.read(path: $0) }, { _ = try SafeTensors.read(path: $0) },
            { _ = try NPYFile.read(path: $0) }, { _ = try CSVMatrix.read(path: $0) },
        ]
        for r in readers {
            XCTAssertThrowsError(try r(missing)) { error in
                XCTAssertEqual(error as? FormatError, FormatError(path: missing, problem: "does not exist"))
                XCTAssertEqual("\(error)", "\(missing): does not exist")
            }
            XCTAssertThrowsError(try r(tempDir.path)) { error in
                XCTAssertTrue("\(error)".contains("directory"), "\(error)")
            }
        }
    }

    /// Every prefix and a few hundred random corruptions of small valid files must either parse or
    /// throw a FormatError; never crash or throw anything else.
    func testCorruptedFilesNeverCrash() throws {
        let stBytes = SafeTensors(tensors: ["a": .init(shape: [2, 2], values: [1, 2, 3, 4]), "b": .init(shape: [1], values: [5])],
                                  metadata: ["k": "v"]).encoded()
        let idxBytes = try IDXFile.encode(uint8: [1, 2, 3, 4, 5, 6], dims: [2, 3])
        let npyBytes = try NPYFile.encode(float32: [1, 2, 3, 4, 5, 6], dims: [2, 3])
        let csvBytes = Array("a,b,c\n1,2,3\n\"4\",5,6\n".utf8)
        let parsers: [(String, [UInt8], ([UInt8]) throws -> Void)] = [
            ("safetensors", stBytes, { _ = try SafeTensors.parse($0, path: "fuzz") }),
            ("idx", idxBytes, { _ = try IDXFile.parse($0, path: "fuzz") }),
            ("npy", npyBytes, { _ = try NPYFile.parse($0, path: "fuzz") }),
            ("csv", csvBytes, { _ = try CSVMatrix.parse($0, path: "fuzz") }),
        ]
        var rng = FormatTestRNG(seed: 0x5EED)
        for (name, good, parse) in parsers {
            XCTAssertNoThrow(try parse(good), name)
            var variants: [[UInt8]] = (0..<good.count).map { Array(good[0..<$0]) }
            for _ in 0..<400 {
                var b = good
                for _ in 0..<(1 + Int(rng.next() % 3)) {
                    let i = Int(rng.next() % UInt64(b.count))
                    switch rng.next() % 4 {
                    case 0: b[i] = UInt8(truncatingIfNeeded: rng.next())
                    case 1: b[i] ^= 1 << UInt8(rng.next() % 8)
                    case 2: b[i] = [0x00, 0xFF, 0x7F, 0x80, 0x22, 0x2C, 0x5B][Int(rng.next() % 7)]
                    default: b.insert(UInt8(truncatingIfNeeded: rng.next()), at: i)
                    }
                }
                variants.append(b)
            }
            for v in variants {
                do { try parse(v) } catch is FormatError {} catch { XCTFail("\(name): non-FormatError \(error)") }
            }
        }
    }
}

private struct FormatTestRNG {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
