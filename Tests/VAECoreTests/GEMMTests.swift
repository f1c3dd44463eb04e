import Dispatch
import Foundation
import XCTest
@testable import VAECore

/// GEMM.multiply against GEMM.reference, plus the invariants the runtime relies on: beta == 0 never
/// reads C, padding columns of C are never written, and results are bit-identical across thread
/// counts and repeated calls. Sizes are kept small because tests run in debug builds.
final class GEMMTests: XCTestCase {
    /// Deterministic values in [-1, 1).
    struct LCG {
        var state: UInt64
        mutating func next() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int32(truncatingIfNeeded: state >> 33)) / Float(1 << 31)
        }
        mutating func fill(_ count: Int) -> [Float] { (0..<count).map { _ in next() } }
    }

    /// Equal element by element, NaN matching NaN (a skipped step may change only the sign of a zero,
    /// which == ignores).
    static func same(_ x: [Float], _ y: [Float]) -> Bool {
        x.count == y.count && zip(x, y).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
    }

    struct Case: CustomStringConvertible {
        var transA: Bool, transB: Bool
        var m: Int, n: Int, k: Int
        var alpha: Float = 1, beta: Float = 0
        /// Extra leading-dimension padding beyond the minimum.
        var padA = 3, padB = 5, padC = 2

        var lda: Int { (transA ? m : k) + padA }
        var ldb: Int { (transB ? k : n) + padB }
        var ldc: Int { n + padC }
        var aCount: Int { (transA ? k : m) * lda }
        var bCount: Int { (transB ? n : k) * ldb }
        var description: String {
            "transA=\(transA) transB=\(transB) m=\(m) n=\(n) k=\(k) alpha=\(alpha) beta=\(beta) " +
                "lda=\(lda) ldb=\(ldb) ldc=\(ldc)"
        }
    }

    static let padSentinel: Float = 12345.0

    /// Runs `multiply` (with `threads`) and `reference` on the same inputs; returns both C arrays.
    /// With beta == 0 the multiply's C starts as NaN (the reference's as the same random values).
    func run(_ t: Case, threads: Int, seed: UInt64 = 1) -> (got: [Float], want: [Float], a: [Float], b: [Float]) {
        var rng = LCG(state: seed)
        let a = rng.fill(max(t.aCount, 1)), b = rng.fill(max(t.bCount, 1))
        var c0 = rng.fill(max(t.m * t.ldc, 1))
        for i in 0..<t.m { for j in t.n..<t.ldc { c0[i * t.ldc + j] = GEMMTests.padSentinel } }
        var got = c0, want = c0
        if t.beta == 0 { for i in 0..<t.m { for j in 0..<t.n { got[i * t.ldc + j] = .nan } } }
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                got.withUnsafeMutableBufferPointer { cp in
                    GEMM.multiply(transposeA: t.transA, transposeB: t.transB, m: t.m, n: t.n, k: t.k,
                                  alpha: t.alpha, a: ap.baseAddress!, lda: t.lda, b: bp.baseAddress!,
                                  ldb: t.ldb, beta: t.beta, c: cp.baseAddress!, ldc: t.ldc, threads: threads)
                }
                want.withUnsafeMutableBufferPointer { cp in
                    GEMM.reference(transposeA: t.transA, transposeB: t.transB, m: t.m, n: t.n, k: t.k,
                                   alpha: t.alpha, a: ap.baseAddress!, lda: t.lda, b: bp.baseAddress!,
                                   ldb: t.ldb, beta: t.beta, c: cp.baseAddress!, ldc: t.ldc)
                }
            }
        }
        return (got, want, a, b)
    }

    /// Compares with a tolerance scaled by Σ|alpha·a·b| + |beta·c| (both sides sum in Float, in
    /// different orders). Checks padding columns are untouched and no NaN leaks from beta == 0.
    func check(_ t: Case, threads: Int = 1, file: StaticString = #filePath, line: UInt = #line) {
        let (got, want, a, b) = run(t, threads: threads)
        var failures = 0
        for i in 0..<t.m {
            for j in 0..<t.ldc {
                let g = got[i * t.ldc + j]
                if j >= t.n {
                    if g != GEMMTests.padSentinel {
                        failures += 1
                        if failures <= 3 { XCTFail("\(t): padding C[\(i), \(j)] written: \(g)", file: file, line: line) }
                    }
                    continue
                }
                var mag: Double = 0
                for p in 0..<t.k {
                    let av = t.transA ? a[p * t.lda + i] : a[i * t.lda + p]
                    let bv = t.transB ? b[j * t.ldb + p] : b[p * t.ldb + j]
                    mag += abs(Double(av) * Double(bv))
                }
                let w = want[i * t.ldc + j]
                mag = mag * abs(Double(t.alpha)) + abs(Double(w)) + 1e-30
                let tol = (Double(t.k) * 2.4e-7 + 1e-6) * mag
                if !(abs(Double(g) - Double(w)) <= tol) {
                    failures += 1
                    if failures <= 3 {
                        XCTFail("\(t) threads=\(threads): C[\(i), \(j)] = \(g), reference \(w)", file: file, line: line)
                    }
                }
            }
        }
    }

    static let edgeSizes = [1, 2, 7, 15, 16, 17, 31, 33, 100, 129]
    static let transposes = [(false, false), (false, true), (true, false), (true, true)]

    /// Every edge size in each of m, n, k (others moderate), all four transpose combinations.
    func testEdgeSizesAllTransposes() {
        for (ta, tb) in GEMMTests.transposes {
            for s in GEMMTests.edgeSizes {
                check(Case(transA: ta, transB: tb, m: s, n: 33, k: 17))
                check(Case(transA: ta, transB: tb, m: 17, n: s, k: 31))
                check(Case(transA: ta, transB: tb, m: 15, n: 33, k: s))
            }
        }
    }

    /// Shapes that exercise every tile path: narrow tail panels (n % 32 in 1…8, 9…16, 17…24, 25…31),
    /// 8/16/24-row narrow tiles, m edges, and several k-blocks (k > 400 = kcMax).
    func testTilePathsAndKBlocks() {
        let shapes: [(Int, Int, Int)] = [
            (24, 20, 40), (25, 24, 33), (23, 8, 9), (48, 16, 64), (40, 57, 5), (129, 100, 7),
            (33, 129, 100), (9, 200, 401), (17, 40, 800), (31, 31, 31), (8, 32, 1), (100, 1, 129),
            (1, 100, 400), (56, 12, 16), (2, 2, 2),
        ]
        for (ta, tb) in GEMMTests.transposes {
            for (m, n, k) in shapes {
                check(Case(transA: ta, transB: tb, m: m, n: n, k: k))
            }
        }
    }

    /// Operands read in place (Aᵀ stored k×m, B stored k×n, A stored m×k when n ≤ 24) versus
    /// packed: leading dimensions that are multiples of 64 floats force the packed path.
    func testDirectAndPackedOperandPaths() {
        for (ta, tb) in GEMMTests.transposes {
            for (m, n, k) in [(60, 60, 60), (60, 20, 60), (20, 60, 60), (61, 23, 130)] {
                for (padA, padB) in [(3, 5), (0, 0)] {
                    var t = Case(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 1, beta: 1)
                    t.padA = padA == 0 ? 64 - (ta ? m : k) % 64 : padA   // lda = 64 or 128
                    t.padB = padB == 0 ? 64 - (tb ? k : n) % 64 : padB
                    if padA == 0 { XCTAssertEqual(t.lda % 64, 0) }
                    check(t)
                }
            }
        }
    }

    /// A stored m×k with k steps where a whole 8-row panel is zero (sparse inputs like MNIST pixels)
    /// takes the sparse row-pointer kernel, which skips those steps. It must give the values of the
    /// dense path (forced by a leading dimension that is a multiple of 64, which packs A), for any
    /// thread count; and with a non-finite value in B it must not skip (0·inf is NaN): the NaNs of
    /// the reference appear in the same places.
    func testSparseAGivesTheDenseValues() {
        // n = 260, 272, 280: an 8-wide, a 16-wide, a 16- and an 8-wide tail panel, which run with the
        // wide tiles over their list of non-zero steps.
        for n in [260, 272, 280] { sparseAGivesTheDenseValues(n: n) }
    }

    func sparseAGivesTheDenseValues(n: Int) {
        let (m, k) = (40, 480)   // two k-blocks, a narrow tail panel, above the threading threshold
        var rng = LCG(state: 7)
        func sparseA(lda: Int) -> [Float] {
            var a = [Float](repeating: 0, count: m * lda)
            var values = LCG(state: 11)
            for i in 0..<m {
                for p in 0..<k {
                    let v = values.next()
                    // Two k steps in three are zero in every row; a quarter of the others too.
                    a[i * lda + p] = p % 3 != 0 || abs(v) < 0.25 ? 0 : v
                }
            }
            return a
        }
        let ldb = k + 5
        var b = rng.fill(n * ldb)
        func multiply(lda: Int, threads: Int) -> [Float] {
            let a = sparseA(lda: lda)
            var c = [Float](repeating: .nan, count: m * n)
            GEMM.multiply(transposeA: false, transposeB: true, m: m, n: n, k: k, alpha: 1, a: a, lda: lda,
                          b: b, ldb: ldb, beta: 0, c: &c, ldc: n, threads: threads)
            return c
        }
        let same = GEMMTests.same
        let dense = multiply(lda: 512, threads: 1)
        XCTAssertTrue(same(multiply(lda: k + 3, threads: 1), dense), "sparse vs dense")
        XCTAssertTrue(same(multiply(lda: k + 3, threads: 2), dense), "sparse (2 threads) vs dense")

        // inf in B at a step that is zero in every row: the dense product has NaN in that column.
        b[7 * ldb + 1] = .infinity
        let denseInf = multiply(lda: 512, threads: 1)
        XCTAssertTrue((0..<m).allSatisfy { denseInf[$0 * n + 7].isNaN })
        XCTAssertTrue(same(multiply(lda: k + 3, threads: 1), denseInf), "non-finite B: no step may be skipped")
        // inf in the last (tail) column only, at a step that is zero in every row.
        b[7 * ldb + 1] = 0.5
        b[(n - 1) * ldb + 1] = .infinity
        let tailInf = multiply(lda: 512, threads: 1)
        XCTAssertTrue((0..<m).allSatisfy { tailInf[$0 * n + n - 1].isNaN })
        XCTAssertTrue(same(multiply(lda: k + 3, threads: 1), tailInf), "n \(n), non-finite tail: no step may be skipped")
    }

    /// transposeC (C stored n×m) gives the values of the plain product, for every transpose, edge sizes
    /// and beta; with a sparse Aᵀ read in place (zero k steps skipped) too, on 1 and 2 threads, and no
    /// step is skipped when B is not finite.
    func testTransposedCAndSparseTransposedA() {
        let same = GEMMTests.same
        /// op(A)·op(B) + beta·C0 as an m×n array: computed plainly, or into Cᵀ (ldc m + 3) and read back.
        func product(_ t: Case, a: [Float], b: [Float], lda: Int, transposeC: Bool, threads: Int) -> [Float] {
            var rng = LCG(state: 5)
            let c0 = rng.fill(t.m * t.n)
            let ldc = transposeC ? t.m + 3 : t.n
            var c = [Float](repeating: GEMMTests.padSentinel, count: (transposeC ? t.n : t.m) * ldc)
            for i in 0..<t.m { for j in 0..<t.n {
                c[transposeC ? j * ldc + i : i * ldc + j] = t.beta == 0 ? .nan : c0[i * t.n + j]
            } }
            GEMM.multiply(transposeA: t.transA, transposeB: t.transB, m: t.m, n: t.n, k: t.k, alpha: t.alpha,
                          a: a, lda: lda, b: b, ldb: t.ldb, beta: t.beta, c: &c, ldc: ldc,
                          transposeC: transposeC, threads: threads)
            if transposeC {
                for j in 0..<t.n { for i in t.m..<ldc { XCTAssertEqual(c[j * ldc + i], GEMMTests.padSentinel) } }
            }
            return (0..<t.m * t.n).map { c[transposeC ? ($0 % t.n) * ldc + $0 / t.n : $0] }
        }
        for (ta, tb) in GEMMTests.transposes {
            for (m, n, k) in [(37, 70, 50), (16, 100, 129), (9, 17, 3)] {
                for (alpha, beta) in [(Float(1), Float(0)), (0.5, 1), (1, -0.75)] {
                    let t = Case(transA: ta, transB: tb, m: m, n: n, k: k, alpha: alpha, beta: beta)
                    var rng = LCG(state: 3)
                    let a = rng.fill(t.aCount), b = rng.fill(t.bCount)
                    let plain = product(t, a: a, b: b, lda: t.lda, transposeC: false, threads: 1)
                    XCTAssertTrue(same(product(t, a: a, b: b, lda: t.lda, transposeC: true, threads: 1), plain), "\(t)")
                }
            }
        }
        // Sparse Aᵀ stored k×m (pixels of a weight gradient): read in place (lda not a multiple of 64,
        // zero steps skipped) against packed (lda 448, dense path).
        var t = Case(transA: true, transB: false, m: 100, n: 400, k: 150)
        var rng = LCG(state: 9)
        var b = rng.fill(t.bCount)
        func sparseA(lda: Int) -> [Float] {
            var values = LCG(state: 13)
            var a = [Float](repeating: 0, count: t.k * lda)
            for p in 0..<t.k { for i in 0..<t.m {
                let v = values.next()
                a[p * lda + i] = (i / 8 + p) % 3 != 0 || abs(v) < 0.3 ? 0 : v
            } }
            return a
        }
        let dense = product(t, a: sparseA(lda: 448), b: b, lda: 448, transposeC: false, threads: 1)
        for threads in [1, 2] {
            for transposeC in [false, true] {
                let got = product(t, a: sparseA(lda: t.lda), b: b, lda: t.lda, transposeC: transposeC, threads: threads)
                XCTAssertTrue(same(got, dense), "sparse Aᵀ, transposeC \(transposeC), \(threads) threads")
            }
        }
        // inf in B at a k step that is zero in A's first 8 columns: the dense product has NaN there.
        b[1 * t.ldb + 3] = .infinity
        t.beta = 0
        let denseInf = product(t, a: sparseA(lda: 448), b: b, lda: 448, transposeC: false, threads: 1)
        XCTAssertTrue(denseInf[0 * t.n + 3].isNaN)
        XCTAssertTrue(same(product(t, a: sparseA(lda: t.lda), b: b, lda: t.lda, transposeC: true, threads: 1), denseInf),
                      "non-finite B: no step may be skipped")
    }

    /// The VAE shapes the runtime uses, scaled down in the batch dimension.
    func testVAELikeShapes() {
        let batch = 16
        // forward X·Wᵀ, backward dY·W, weight gradient dYᵀ·X
        for (nIn, nOut) in [(196, 100), (100, 20), (20, 100)] {
            check(Case(transA: false, transB: true, m: batch, n: nOut, k: nIn, padA: 0, padB: 0, padC: 0))
            check(Case(transA: false, transB: false, m: batch, n: nIn, k: nOut, padA: 0, padB: 0, padC: 0))
            check(Case(transA: true, transB: false, m: nOut, n: nIn, k: batch, beta: 1, padA: 0, padB: 0, padC: 0))
        }
    }

    func testAlphaBetaVariants() {
        let coefficients: [(Float, Float)] = [(1, 0), (1, 1), (-0.5, 2), (2, -1), (0.25, 0), (1, 0.5)]
        for (ta, tb) in GEMMTests.transposes {
            for (alpha, beta) in coefficients {
                check(Case(transA: ta, transB: tb, m: 37, n: 45, k: 29, alpha: alpha, beta: beta))
                check(Case(transA: ta, transB: tb, m: 9, n: 20, k: 400, alpha: alpha, beta: beta))
            }
        }
    }

    /// beta == 0 must not read C: NaN garbage does not propagate (checked inside `check`, whose
    /// multiply starts from NaN when beta == 0), on full tiles, edge tiles and narrow tiles alike.
    func testBetaZeroIgnoresNaN() {
        for (ta, tb) in GEMMTests.transposes {
            for (m, n, k) in [(16, 32, 8), (17, 33, 9), (24, 20, 7), (3, 5, 400)] {
                let t = Case(transA: ta, transB: tb, m: m, n: n, k: k, alpha: 1, beta: 0)
                let (got, _, _, _) = run(t, threads: 1)
                for i in 0..<m { for j in 0..<n { XCTAssertFalse(got[i * t.ldc + j].isNaN, "\(t) C[\(i), \(j)]") } }
                check(t)
            }
        }
    }

    /// k == 0 or alpha == 0: C = beta·C without touching A·B.
    func testDegenerate() {
        for beta: Float in [0, 1, 3] {
            let t = Case(transA: false, transB: false, m: 5, n: 7, k: 0, alpha: 1, beta: beta, padA: 1, padB: 0)
            let (got, want, _, _) = run(t, threads: 2)
            XCTAssertEqual(got, want)
        }
        let t = Case(transA: true, transB: false, m: 6, n: 9, k: 4, alpha: 0, beta: 0.5)
        let (got, want, _, _) = run(t, threads: 1)
        XCTAssertEqual(got, want)
        // m == 0 or n == 0: nothing happens.
        var c: [Float] = [1]
        let a: [Float] = [1], b: [Float] = [1]
        GEMM.multiply(transposeA: false, transposeB: false, m: 0, n: 1, k: 1, alpha: 1, a: a, lda: 1, b: b,
                      ldb: 1, beta: 0, c: &c, ldc: 1, threads: 2)
        XCTAssertEqual(c, [1])
    }

    /// Shapes above GEMM.parallelFlopThreshold, so threads > 1 really splits the work: the result
    /// must be bit-identical to threads = 1 (k is never split; each C element sees the same
    /// operations), and to a repeated call. Covers the split along n and the split along m.
    func testThreadsBitIdentical() {
        let shapes: [(Bool, Bool, Int, Int, Int)] = [
            (false, true, 24, 200, 480),   // split along n, two k-blocks, 8-wide tail
            (true, false, 300, 20, 480),   // narrow n: split along m, narrow tiles, Aᵀ in place
            (false, true, 256, 48, 200),   // n ≤ 64: row-pointer kernels on A in place, split along m
        ]
        for (ta, tb, m, n, k) in shapes {
            let lda = ta ? m + 3 : k + 3
            let expected = min(2, GEMM.onlineCPUs)
            XCTAssertEqual(GEMM.threadsUsed(m: m, n: n, k: k, threads: 2, transposeA: ta, lda: lda), expected)
            XCTAssertEqual(GEMM.threadsUsed(m: m, n: n, k: k, threads: 1, transposeA: ta, lda: lda), 1)
            for (alpha, beta): (Float, Float) in [(1, 0), (0.5, 1)] {
                let t = Case(transA: ta, transB: tb, m: m, n: n, k: k, alpha: alpha, beta: beta)
                let one = run(t, threads: 1).got
                let two = run(t, threads: 2).got
                let twoAgain = run(t, threads: 2).got
                let three = run(t, threads: 3).got
                XCTAssertEqual(one.map(\.bitPattern), two.map(\.bitPattern), "\(t): threads 1 vs 2")
                XCTAssertEqual(two.map(\.bitPattern), twoAgain.map(\.bitPattern), "\(t): repeated call")
                XCTAssertEqual(one.map(\.bitPattern), three.map(\.bitPattern), "\(t): threads 1 vs 3")
            }
        }
        check(Case(transA: false, transB: true, m: 24, n: 200, k: 400), threads: 2)
    }

    /// `stepCounts`: per 8-row panel of A, the k steps its 32-wide tiles ran, summed over the k-blocks:
    /// the non-zero steps of a sparse panel, every step of a dense one (or of a partial panel), for A
    /// stored m×k and for Aᵀ stored k×m with C transposed, on 1 and 2 threads.
    func testStepCountsPerPanel() {
        let (m, n, k) = (28, 96, 500)   // 3 whole panels and a partial one; two k-blocks of 250
        func value(_ i: Int, _ p: Int) -> Float {
            switch i / 8 {
            case 0: return 0                                    // all zero: 0 steps
            case 1: return p % 10 == 0 && i == 9 ? 0.5 : 0      // 25 steps per block
            default: return Float(i + p % 7) * 0.01 + 0.1       // dense: every step
            }
        }
        var rng = LCG(state: 21)
        let b = rng.fill(k * n)
        for transposeA in [false, true] {
            let lda = transposeA ? m + 3 : k + 3
            var a = [Float](repeating: 0, count: (transposeA ? k : m) * lda)
            for i in 0..<m { for p in 0..<k { a[transposeA ? p * lda + i : i * lda + p] = value(i, p) } }
            for threads in [1, 2] {
                var counts = [Int32](repeating: -1, count: 4)
                var c = [Float](repeating: 0, count: m * n)
                GEMM.multiply(transposeA: transposeA, transposeB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: lda,
                              b: b, ldb: n, beta: 0, c: &c, ldc: transposeA ? m : n, transposeC: transposeA,
                              stepCounts: &counts, threads: threads)
                // A stored m×k (B in place): panel 1's only non-zero row, 9, is in one pair, so pair tiles
                // run its 25 steps per block, counted as 25 pair steps × 2 rows × 1.4 / 8 ≈ 9 8-row steps.
                XCTAssertEqual(counts, [0, transposeA ? 50 : 18, 500, 500], "transposeA \(transposeA), \(threads) threads")
            }
        }
    }

    /// Calls issued concurrently from concurrentPerform workers (each itself asking for 2 threads)
    /// give the same bits as the same calls made one after another.
    func testConcurrentCallers() {
        let cases = [
            Case(transA: false, transB: true, m: 40, n: 70, k: 50),
            Case(transA: true, transB: false, m: 33, n: 20, k: 64, beta: 1),
            Case(transA: false, transB: false, m: 24, n: 200, k: 400),
            Case(transA: true, transB: true, m: 17, n: 100, k: 9, alpha: 2, beta: -1),
        ]
        let serial = cases.map { run($0, threads: 2).got }
        final class Results: @unchecked Sendable { var values: [[Float]] = [] }
        let results = Results()
        results.values = Array(repeating: [], count: cases.count)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: cases.count) { i in
            let got = run(cases[i], threads: 2).got
            lock.lock(); results.values[i] = got; lock.unlock()
        }
        for i in cases.indices {
            XCTAssertEqual(serial[i].map(\.bitPattern), results.values[i].map(\.bitPattern), "\(cases[i])")
        }
    }
    /// The list of non-zero k steps of an 8-row panel (vector scan with a compress table) against a
    /// scalar scan, for every kind of 16-step group: all zero, all non-zero, and mixed patterns in
    /// either byte; −0 counts as zero, NaN and subnormals as non-zero; a tail shorter than 16 steps.
    func testNonZeroStepsMatchAScalarScan() {
        let lda = 131, kc = 125
        var rng = LCG(state: 5)
        var a = [Float](repeating: 0, count: 8 * lda)
        for p in 0..<kc {
            let group = p / 16
            for i in 0..<8 {
                let v = rng.next()
                switch group {
                case 0: a[i * lda + p] = 0                                   // all zero
                case 1: a[i * lda + p] = v == 0 ? 1 : v                      // all non-zero
                case 2: a[i * lda + p] = p % 5 == 0 && i == 3 ? v : -0.0     // sparse, −0 elsewhere
                case 3: a[i * lda + p] = p % 16 >= 8 && i == 7 ? v : 0       // high byte only
                case 4: a[i * lda + p] = p % 16 < 8 && i == 0 ? v : 0        // low byte only
                case 5: a[i * lda + p] = p == 85 && i == 2 ? .nan : (p == 90 && i == 5 ? .leastNonzeroMagnitude : 0)
                default: a[i * lda + p] = abs(v) < 0.8 ? 0 : v                // random, and the tail
                }
            }
        }
        let expected = (0..<kc).filter { p in (0..<8).contains { a[$0 * lda + p] != 0 || a[$0 * lda + p].isNaN } }
        var steps = [Int32](repeating: -1, count: kc + 16)
        let count = a.withUnsafeBufferPointer {
            GEMM.nonZeroSteps($0.baseAddress!, lda: lda, kc: kc, limit: kc, into: &steps)
        }
        XCTAssertEqual(Array(steps[0..<count]).map(Int.init), expected)
        XCTAssertTrue(expected.contains(85) && expected.contains(90) && !expected.contains(1))
    }
}

