import Foundation
import XCTest
@testable import VAECore

/// Data held as bytes (`ByteValues`) must read back with exactly the bits the float data would have:
/// each value recomputed as `Float(byte) * scale`, the loader's own multiplication. The expected
/// values here are computed independently from the bytes written to the file, and every comparison
/// is of bit patterns (so -0 against +0, or one ulp, fails).
final class CompactDatasetTests: XCTestCase {
    let count = 40, features = 13

    /// Bytes covering all 256 values (then a scrambled tail), so every product of the scale is checked.
    var bytes: [UInt8] {
        (0..<count * features).map { UInt8(truncatingIfNeeded: $0 < 256 ? $0 : $0 &* 97 &+ 31) }
    }

    /// Rows out of order, with repeats (a batch of a shuffled epoch never repeats, an evaluation may).
    let rows: ArraySlice<Int> = [7, 0, 39, 7, 7, 21, 38, 1, 0, 19, 39, 3]

    func write(_ bytes: [UInt8], dims: [Int], name: String = "data.idx") throws -> URL {
        let url = try TestPaths.temporaryFolder(for: self).appendingPathComponent(name)
        try IDXFile.write(uint8: bytes, dims: dims, to: url.path)
        return url
    }

    func load(_ url: URL, scale: Double, dims: [Int]) throws -> Dataset {
        try Dataset.load(DataSource(path: url.path, format: .idx, scale: scale), relativeTo: "/",
                         input: InputSpec(name: "x", dims: dims))
    }

    func gathered(_ data: Dataset, _ rows: ArraySlice<Int>) -> [Float] {
        [Float](unsafeUninitializedCapacity: rows.count * data.features) { out, initialized in
            data.gather(rows, into: out.baseAddress!)
            initialized = rows.count * data.features
        }
    }

    func assertSameBits(_ actual: [Float], _ expected: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, what, file: file, line: line)
        if let i = actual.indices.first(where: { i in i < expected.count && actual[i].bitPattern != expected[i].bitPattern }) {
            XCTFail("\(what): value \(i) is \(actual[i]) (0x\(String(actual[i].bitPattern, radix: 16))), expected \(expected[i]) (0x\(String(expected[i].bitPattern, radix: 16)))", file: file, line: line)
        }
    }

    func testIDXBytesGatherTheSameBitsAsTheirScaledFloatsForAnyScale() throws {
        let bytes = self.bytes
        let url = try write(bytes, dims: [count, features])
        // 1/255 (mnist), whole and power-of-two scales (exact products), and scales whose products
        // round (0.1, 1/3), are tiny, huge or negative (-0 from byte 0).
        for scale in [1.0 / 255, 1, 0.5, 0.1, 1.0 / 3, 3.7e-3, 1e-30, 1e30, -0.7] {
            let data = try load(url, scale: scale, dims: [features])
            XCTAssertTrue(data.isCompact, "scale \(scale)")
            let expected = bytes.map { Float($0) * Float(scale) }
            let reference = Dataset(path: data.path, count: count, features: features, values: expected)
            XCTAssertFalse(reference.isCompact)
            let rowsExpected = rows.flatMap { expected[$0 * features..<($0 + 1) * features] }
            assertSameBits(gathered(data, rows), rowsExpected, "gather at scale \(scale)")
            assertSameBits(gathered(reference, rows), rowsExpected, "float gather at scale \(scale)")
            assertSameBits(data.values, expected, "values at scale \(scale)")
            assertSameBits(data.row(38), Array(expected[38 * features..<39 * features]), "row at scale \(scale)")
            // The data checks see the same values: same range (bits) and the same note or error.
            assertSameBits([data.range.min, data.range.max], [expected.min()!, expected.max()!], "range at scale \(scale)")
            for likelihood in [Likelihood.bernoulli, .continuousBernoulli] {
                XCTAssertEqual(Result { try data.check(against: likelihood) }.summary,
                               Result { try reference.check(against: likelihood) }.summary, "check at scale \(scale)")
            }
        }
    }

    func testImageRowsMovedToChannelsLastStayCompact() throws {
        let (channels, pixels) = (3, 4), examples = 30
        let bytes = (0..<examples * channels * pixels).map { UInt8(($0 * 53 + 7) % 256) }
        let url = try write(bytes, dims: [examples, channels, 2, 2])
        let data = try load(url, scale: 1.0 / 255, dims: [channels, 2, 2])
        XCTAssertTrue(data.isCompact)
        // Channels-last: example e's value at pixel p, channel c was the file's [e, c, p].
        let expected = (0..<examples).flatMap { e in
            (0..<pixels).flatMap { p in (0..<channels).map { c in Float(bytes[(e * channels + c) * pixels + p]) * Float(1.0 / 255) } }
        }
        let n = channels * pixels
        assertSameBits(gathered(data, [29, 4, 4, 0]), [29, 4, 4, 0].flatMap { expected[$0 * n..<($0 + 1) * n] }, "image gather")
    }

    func testBinarisedDataIsCompactAndDrawsTheSameBits() throws {
        let bytes = self.bytes, scale = Float(1.0 / 255)
        let data = try load(try write(bytes, dims: [count, features]), scale: 1.0 / 255, dims: [features])
        let grey = bytes.map { Float($0) * scale }
        let floats = Dataset(path: "grey", count: count, features: features, values: grey)
        var random = RandomSource(seed: 77)
        let drawn = grey.map { random.nextUniform() < $0 ? Float(1) : 0 }
        let cases: [(Binarization, [Float])] = [(.threshold(0.5), grey.map { $0 > 0.5 ? 1 : 0 }), (.dynamic, drawn)]
        for (binarization, expected) in cases {
            XCTAssertEqual(Set(expected), [0, 1])
            for source in [data, floats] {
                let binary = source.binarized(binarization, draw: 77)
                XCTAssertTrue(binary.isCompact, "\(binarization)")
                assertSameBits(binary.values, expected, "\(binarization) of \(source.isCompact ? "bytes" : "floats")")
                assertSameBits(gathered(binary, rows), rows.flatMap { expected[$0 * features..<($0 + 1) * features] }, "gather of \(binarization)")
            }
        }
    }

    /// A big-endian IDX float32 file, for data that is not bytes.
    func writeFloats(_ values: [Float], dims: [Int]) throws -> URL {
        var file: [UInt8] = [0, 0, 0x0D, UInt8(dims.count)]
        for d in dims { file += withUnsafeBytes(of: UInt32(d).bigEndian, Array.init) }
        for v in values { file += withUnsafeBytes(of: v.bitPattern.bigEndian, Array.init) }
        let url = try TestPaths.temporaryFolder(for: self).appendingPathComponent("floats.idx")
        try Data(file).write(to: url)
        return url
    }

    func testDataThatIsNotExactlyScaledBytesStaysFloats() throws {
        let wholes = bytes.map(Float.init)
        var cases: [(String, [Float], Double, Bool)] = [("whole numbers stored as floats", wholes, 1, true)]
        var grey = wholes; grey[200] = 0.3
        cases.append(("a value between bytes", grey, 1, false))
        var above = wholes; above[5] = 256
        cases.append(("a value above 255", above, 1, false))
        var negative = wholes; negative[9] = -3
        cases.append(("a negative value", negative, 1, false))
        var negativeZero = wholes; negativeZero[0] = -0.0
        cases.append(("-0, which byte 0 times a positive scale is not", negativeZero, 1, false))
        var offByOneUlp = wholes; offByOneUlp[77] = offByOneUlp[77].nextUp
        cases.append(("a value one ulp off a byte", offByOneUlp, 1, false))
        cases.append(("scale 0", wholes, 0, false))
        for (what, values, scale, compact) in cases {
            let data = try Dataset.load(DataSource(path: try writeFloats(values, dims: [count, features]).path, format: .idx, scale: scale),
                                        relativeTo: "/", input: InputSpec(name: "x", dims: [features]))
            XCTAssertEqual(data.isCompact, compact, what)
            let expected = values.map { $0 * Float(scale) }
            assertSameBits(gathered(data, rows), rows.flatMap { expected[$0 * features..<($0 + 1) * features] }, what)
            assertSameBits(data.values, expected, what)
        }
    }

    /// The exactness check itself, value by value: any value that is not bit for bit a byte's
    /// product is refused, whichever byte it sits next to.
    func testExactnessCheckRefusesEveryNearMiss() {
        for scale in [Float(1.0 / 255), 0.1, -0.7] {
            let products = (0...255).map { Float(UInt8($0)) * scale }
            XCTAssertEqual(ByteValues(products, scale: scale)?.bytes, (0...255).map(UInt8.init))
            for byte in [0, 1, 128, 254, 255] {
                for miss in [products[byte].nextUp, products[byte].nextDown, -products[byte]] where miss.bitPattern != products[byte].bitPattern {
                    var values = products
                    values[byte] = miss
                    XCTAssertNil(ByteValues(values, scale: scale), "scale \(scale), byte \(byte), value \(miss)")
                }
            }
        }
    }
}

private extension Result where Failure == Error {
    var summary: String {
        switch self {
        case .success(let value): return "success: \(String(describing: value))"
        case .failure(let error): return "failure: \(error)"
        }
    }
}
