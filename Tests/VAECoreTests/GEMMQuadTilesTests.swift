import XCTest
@testable import VAECore

/// The quad tiles (GEMMQuadTiles.swift) of a sparse Aᵀ read in place, C stored transposed, give the dense
/// product's values bit for bit: rows not a multiple of 4 or 8, widths not multiples of 16 or 32 (with and
/// without a whole 16-wide tail), two k-blocks, beta ≠ 0, 1 and 2 threads, and no step skipped when B is
/// not finite.
final class GEMMQuadTilesTests: XCTestCase {
    /// A stored k×m (lda ≥ m) whose 4-row groups are non-zero in 1 step of 3 (group g at p ≡ g mod 3), so
    /// an 8-row panel's union is non-zero in 2 of 3 steps and its two quad lists are cheaper.
    static func sparseA(m: Int, k: Int, lda: Int, seed: UInt64 = 41) -> [Float] {
        var values = GEMMTests.LCG(state: seed)
        var a = [Float](repeating: 0, count: k * lda)
        for p in 0..<k { for i in 0..<m {
            let v = values.next()
            a[p * lda + i] = (p + i / 4) % 3 != 0 || abs(v) < 0.2 ? 0 : v
        } }
        return a
    }

    /// C stored n×m (ldc = m + 3) = 0.75 · (Aᵀ·B)ᵀ + beta · C; lda a multiple of 64 packs A (no step skipped).
    func product(m: Int, n: Int, k: Int, b: [Float], ldb: Int, lda: Int, beta: Float, threads: Int,
                 stepCounts: UnsafeMutablePointer<Int32>? = nil) -> [Float] {
        let a = Self.sparseA(m: m, k: k, lda: lda)
        let ldc = m + 3
        var rng = GEMMTests.LCG(state: 43)
        var c = beta == 0 ? [Float](repeating: .nan, count: n * ldc) : rng.fill(n * ldc)
        GEMM.multiply(transposeA: true, transposeB: false, m: m, n: n, k: k, alpha: 0.75, a: a, lda: lda,
                      b: b, ldb: ldb, beta: beta, c: &c, ldc: ldc, transposeC: true, stepCounts: stepCounts,
                      threads: threads)
        return c
    }

    func testQuadTilesGiveTheDenseValues() {
        let k = 600   // two k-blocks of 300
        for m in [43, 46] {   // 5 whole panels and 3 or 6 rows
            // 400: a whole 16-wide tail in the quads; 216: 16 + 8 tail; 392: 8 tail; 90: a padded 32-wide panel.
            for n in [400, 216, 392, 90] {
                var rng = GEMMTests.LCG(state: 47)
                let ldb = n + 5
                let b = rng.fill(k * ldb)
                for beta: Float in [0, 0.5] {
                    let dense = product(m: m, n: n, k: k, b: b, ldb: ldb, lda: 64, beta: beta, threads: 1)
                    for threads in [1, 2] {
                        let got = product(m: m, n: n, k: k, b: b, ldb: ldb, lda: m + 3, beta: beta, threads: threads)
                        XCTAssertTrue(GEMMTests.same(got, dense), "m \(m) n \(n) beta \(beta) threads \(threads)")
                    }
                }
            }
        }
    }

    func testNonFiniteBRunsEveryStep() {
        let (m, n, k) = (16, 400, 300)
        var rng = GEMMTests.LCG(state: 53)
        var b = rng.fill(k * (n + 5))
        b[2 * (n + 5) + 5] = .infinity   // step 2, column 5 (first chunk): A is zero there in every row but 4..<8
        let dense = product(m: m, n: n, k: k, b: b, ldb: n + 5, lda: 64, beta: 0, threads: 1)
        XCTAssertTrue((0..<m).allSatisfy { (4..<8).contains($0) || dense[5 * (m + 3) + $0].isNaN })
        XCTAssertTrue(GEMMTests.same(product(m: m, n: n, k: k, b: b, ldb: n + 5, lda: m + 3, beta: 0, threads: 1), dense))
    }

    /// The values above are equal whether or not the quad tiles run, so this checks that they would run on
    /// that A: every whole 8-row panel's scan (the one `Tiles.wide` makes, in each k-block of 300) lists
    /// few enough steps to skip, and its two 4-row lists pass `quadTilesPay`. (A change of the cost rule or
    /// of the scan that stopped choosing them for this A fails here rather than passing silently above.)
    func testQuadTilesAreChosenForThisA() {
        let (m, k, kc) = (43, 600, 300)
        let lda = m + 3
        let a = Self.sparseA(m: m, k: k, lda: lda)
        let steps = UnsafeMutablePointer<Int32>.allocate(capacity: 3 * kc)
        defer { steps.deallocate() }
        a.withUnsafeBufferPointer { a in
            for block in 0..<(k / kc) {
                for panel in 0..<(m / 8) {
                    var quads = GEMM.PairLists(lists: steps + kc, stride: kc)
                    let start = a.baseAddress! + block * kc * lda + panel * 8
                    let count = GEMM.nonZeroSteps(columns: start, lda: lda, kc: kc, limit: kc * 3 / 4, into: steps, quads: &quads)
                    XCTAssertLessThanOrEqual(count, kc * 3 / 4, "block \(block) panel \(panel)")
                    XCTAssertTrue(GEMM.quadTilesPay(quadSteps: quads.total, panelSteps: count),
                                  "block \(block) panel \(panel): \(quads.counts) against \(count)")
                }
            }
        }
    }
}
