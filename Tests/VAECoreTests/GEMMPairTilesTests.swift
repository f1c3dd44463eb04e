import XCTest
@testable import VAECore

/// The pair tiles (GEMMPairTiles.swift) of a sparse A stored m×k read in place give the dense product's
/// values: rows not a multiple of 8, widths not multiples of 16 or 32, two k-blocks, beta ≠ 0, B packed
/// row-major (transposeB) or read in place, 1 and 2 threads, and no step skipped when B is not finite.
final class GEMMPairTilesTests: XCTestCase {
    /// A m×k whose pairs of rows are non-zero in 1 step of 6 (pair g at p ≡ g mod 6), so the 8-row union
    /// is non-zero in 4 of 6 steps: sparse enough for the panel's list, and the pair lists are cheaper.
    func sparseA(m: Int, k: Int, lda: Int) -> [Float] {
        var values = GEMMTests.LCG(state: 17)
        var a = [Float](repeating: 0, count: m * lda)
        for i in 0..<m { for p in 0..<k {
            let v = values.next()
            a[i * lda + p] = (p + (i % 8) / 2) % 6 != 0 || abs(v) < 0.2 ? 0 : v
        } }
        return a
    }

    func product(m: Int, n: Int, k: Int, transposeB: Bool, b: [Float], lda: Int, beta: Float, threads: Int) -> [Float] {
        let a = sparseA(m: m, k: k, lda: lda)
        let ldb = transposeB ? k + 5 : n + 3
        var rng = GEMMTests.LCG(state: 23)
        var c = beta == 0 ? [Float](repeating: .nan, count: m * n) : rng.fill(m * n)
        GEMM.multiply(transposeA: false, transposeB: transposeB, m: m, n: n, k: k, alpha: 0.75, a: a, lda: lda,
                      b: b, ldb: ldb, beta: beta, c: &c, ldc: n, threads: threads)
        return c
    }

    func testPairTilesGiveTheDenseValues() {
        let (m, k) = (43, 600)   // 5 whole panels and 3 rows; two k-blocks of 300
        for n in [200, 216, 392] {
            for transposeB in [true, false] {
                var rng = GEMMTests.LCG(state: 29)
                let b = rng.fill((transposeB ? n * (k + 5) : k * (n + 3)))
                for beta: Float in [0, 0.5] {
                    // lda 640 (a multiple of 64): A packed, every step run densely.
                    let dense = product(m: m, n: n, k: k, transposeB: transposeB, b: b, lda: 640, beta: beta, threads: 1)
                    for threads in [1, 2] {
                        let got = product(m: m, n: n, k: k, transposeB: transposeB, b: b, lda: k + 3, beta: beta, threads: threads)
                        XCTAssertTrue(GEMMTests.same(got, dense), "n \(n) transposeB \(transposeB) beta \(beta) threads \(threads)")
                    }
                }
            }
        }
    }

    func testNonFiniteBRunsEveryStep() {
        let (m, n, k) = (16, 192, 300)
        var rng = GEMMTests.LCG(state: 31)
        var b = rng.fill(n * (k + 5))
        b[5 * (k + 5) + 1] = .infinity   // column 5, step 1: zero in every row of A
        let dense = product(m: m, n: n, k: k, transposeB: true, b: b, lda: 320, beta: 0, threads: 1)
        XCTAssertTrue((0..<m).allSatisfy { dense[$0 * n + 5].isNaN })
        XCTAssertTrue(GEMMTests.same(product(m: m, n: n, k: k, transposeB: true, b: b, lda: k + 3, beta: 0, threads: 1), dense))
    }

    /// The pair tiles are really used on this A: the panels' counted work is the pair unit, less than
    /// the 8-row lists' steps.
    func testPairTilesAreChosen() {
        let (m, n, k) = (16, 96, 300)
        let a = sparseA(m: m, k: k, lda: k + 3)
        var rng = GEMMTests.LCG(state: 37)
        let b = rng.fill(k * n)
        var counts = [Int32](repeating: -1, count: 2)
        var c = [Float](repeating: 0, count: m * n)
        GEMM.multiply(transposeA: false, transposeB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: k + 3,
                      b: b, ldb: n, beta: 0, c: &c, ldc: n, stepCounts: &counts, threads: 1)
        XCTAssertTrue(counts.allSatisfy { $0 > 0 && $0 < 150 }, "\(counts)")
    }
}
