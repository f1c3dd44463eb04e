import Foundation
import XCTest
@testable import VAECore

/// `RandomSource.fillNormal` draws its pairs a chunk at a time and takes the sines and cosines in
/// increasing order of angle from glibc's `sincos`; the PyTorch and JAX exports reproduce the draws pair
/// by pair with `math.log`, `math.cos` and `math.sin`. These tests hold it to that formula bit for bit,
/// the generator's end state included.
final class NormalDrawTests: XCTestCase {
    /// The Box–Muller formula as the exports compute it (and vaec did up to now): one pair at a time,
    /// glibc's `log`, `cos` and `sin` called separately.
    func pairAtATime(_ random: inout RandomSource, count: Int) -> [Float] {
        var values: [Float] = []
        while values.count < count {
            let u1 = (Double(random.next() >> 11) + 1) * (1.0 / 9_007_199_254_740_993.0)
            let u2 = Double(random.next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
            let r = (-2 * Foundation.log(u1)).squareRoot()
            let theta = 2 * Double.pi * u2
            values.append(Float(r * Foundation.cos(theta)))
            if values.count < count { values.append(Float(r * Foundation.sin(theta))) }
        }
        return values
    }

    func assertSameBits(_ actual: [Float], _ expected: [Float], _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, message, file: file, line: line)
        if let i = actual.indices.first(where: { i in i < expected.count && actual[i].bitPattern != expected[i].bitPattern }) {
            XCTFail("\(message): draw \(i) is \(actual[i]), the formula gives \(expected[i])", file: file, line: line)
        }
    }

    /// Counts around the chunk's size (odd ones drop a sine), mnist's batch, and a long run of small
    /// calls; about 7·10⁵ draws in all.
    func testDrawsAreThePairAtATimeFormulasBits() {
        let chunk = 2 * 2048
        let counts = [0, 1, 2, 3, 17, 2560, chunk - 1, chunk, chunk + 1, chunk + 2, 3 * chunk + 7, 100_001]
        for (seed, count) in counts.enumerated() {
            var drawn = RandomSource(seed: UInt64(seed) &* 0x9E37_79B9 &+ 11), formula = drawn
            let values = drawn.normals(count)
            assertSameBits(values, pairAtATime(&formula, count: count), "count \(count)")
            XCTAssertEqual(drawn, formula, "count \(count): the generator must end where the formula's does")
        }
        var drawn = RandomSource(seed: 2024), formula = drawn
        for call in 0..<200 {
            let count = 2560 + call % 5
            assertSameBits(drawn.normals(count), pairAtATime(&formula, count: count), "call \(call)")
        }
        XCTAssertEqual(drawn, formula)
    }

    /// glibc's `sincos`, where it is used, must give `sin` and `cos` bit for bit: on 10⁶ angles drawn as
    /// `fillNormal` draws them, the ends of the range, and the neighbours of glibc's path thresholds
    /// (|x| < 0.855469: a direct polynomial; < 2.426265: via π/2 − x; beyond, a full reduction).
    func testSincosIsSinAndCosBitForBit() throws {
        let sincos = try XCTUnwrap(SineAndCosine.glibcSincos, "glibc's sincos was not found or disagreed with sin and cos at first use")
        var angles: [Double] = []
        var random = RandomSource(seed: 77)
        for _ in 0..<1_000_000 { angles.append(2 * Double.pi * (Double(random.next() >> 11) * (1.0 / 9_007_199_254_740_992.0))) }
        for b in Array(0..<4096 as Range<UInt64>) + Array((1 << 53) - 4096..<(1 << 53)) {
            angles.append(2 * Double.pi * (Double(b) * (1.0 / 9_007_199_254_740_992.0)))
        }
        for threshold in [0.855469, 2.426265, Double.pi / 2, Double.pi, 3 * Double.pi / 2] {
            var (below, above) = (threshold, threshold)
            for _ in 0..<4096 { below = below.nextDown; above = above.nextUp; angles += [below, above] }
        }
        // Called through function values, so no optimiser can fuse the two calls into a `sincos` call.
        let sine: (Double) -> Double = Foundation.sin, cosine: (Double) -> Double = Foundation.cos
        var mismatches = 0
        for x in angles {
            var s = 0.0, c = 0.0
            sincos(x, &s, &c)
            if s.bitPattern != sine(x).bitPattern || c.bitPattern != cosine(x).bitPattern {
                if mismatches < 5 { XCTFail("sincos(\(x)) = (\(s), \(c)), sin and cos give (\(sine(x)), \(cosine(x)))") }
                mismatches += 1
            }
        }
        XCTAssertEqual(mismatches, 0)
    }
}
