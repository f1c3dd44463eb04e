import Dispatch
import XCTest
@testable import VAECore

/// The rows of a transposed weight gradient for dead units (`ZeroRowSkip`) and the GEMM's row map for C
/// stored transposed (`cRows`) that computes the live rows in place.
final class ZeroRowSkipTests: XCTestCase {
    typealias LCG = GEMMTests.LCG

    /// op(C)'s column j stored in C's row rows[j] holds what row j holds without the map (from the same old
    /// row values, for beta ≠ 0), for the quad tiles (sparse A read in place) and the 8×32 / narrow tiles
    /// (A packed: lda a multiple of 64), with and without a 16-wide tail; the rows the map skips are not
    /// touched.
    func testRowMapStoresEachColumnInItsRow() {
        let (m, k) = (43, 300)
        for n in [400, 216, 90] {
            let ldb = n + 5, ldc = m + 2
            var rng = LCG(state: 67)
            let b = rng.fill(k * ldb)
            // Columns to every other row of a C with 2n + 1 rows, backwards.
            let rows = (0..<n).map { Int32(2 * (n - 1 - $0) + 1) }
            for lda in [m + 3, 64] {
                let a = GEMMQuadTilesTests.sparseA(m: m, k: k, lda: lda, seed: 61)   // the quad tiles run on it
                for beta: Float in [0, 0.5] {
                    var start = LCG(state: 71)
                    let initial = start.fill((2 * n + 1) * ldc)
                    var plain = [Float](repeating: 0, count: n * ldc)
                    for j in 0..<n { for i in 0..<ldc { plain[j * ldc + i] = initial[Int(rows[j]) * ldc + i] } }
                    var mapped = initial
                    GEMM.multiply(transposeA: true, transposeB: false, m: m, n: n, k: k, alpha: 0.75, a: a, lda: lda,
                                  b: b, ldb: ldb, beta: beta, c: &plain, ldc: ldc, transposeC: true, threads: 1)
                    rows.withUnsafeBufferPointer { map in
                        GEMM.multiply(transposeA: true, transposeB: false, m: m, n: n, k: k, alpha: 0.75, a: a, lda: lda,
                                      b: b, ldb: ldb, beta: beta, c: &mapped, ldc: ldc, transposeC: true,
                                      cRows: map.baseAddress!, threads: 1)
                    }
                    for j in 0..<n {
                        let to = Int(rows[j]) * ldc
                        XCTAssertTrue((0..<ldc).allSatisfy { plain[j * ldc + $0].bitPattern == mapped[to + $0].bitPattern },
                                      "n \(n) lda \(lda) beta \(beta) column \(j)")
                    }
                    for r in stride(from: 0, to: 2 * n + 1, by: 2) {
                        XCTAssertTrue((0..<ldc).allSatisfy { mapped[r * ldc + $0].bitPattern == initial[r * ldc + $0].bitPattern },
                                      "row \(r) untouched (n \(n))")
                    }
                }
            }
        }
    }

    /// A weight gradient dyᵀ·x whose dy has `dead` columns that are ±0 in every example.
    struct Gradient {
        let m: Int, n: Int, k: Int
        var dy: [Float], x: [Float]

        init(m: Int, n: Int, k: Int, dead: Set<Int>) {
            (self.m, self.n, self.k) = (m, n, k)
            var rng = LCG(state: 73)
            dy = (0..<k * m).map { i in
                let v = rng.next()
                return dead.contains(i % m) ? (v < 0 ? -0.0 : 0) : v
            }
            x = (0..<k * n).map { _ in
                let v = rng.next()
                return v < 0.3 ? 0 : v   // pixels: non-negative, mostly 0
            }
        }

        /// The product as `MatrixCall` runs it (whole, or in `pieces` balanced column pieces, at the same
        /// time), into a C full of NaN.
        /// `xKnownFinite`: x bound as a finite data batch (`MatrixCall.bFinite`), so not checked.
        func viaMatrixCall(pieces: Int = 1, xKnownFinite: Bool = false) -> [Float] {
            var c = [Float](repeating: .nan, count: m * n)
            dy.withUnsafeBufferPointer { a in x.withUnsafeBufferPointer { b in c.withUnsafeMutableBufferPointer { c in
                var call = MatrixCall(transposeA: true, transposeB: false, m: m, n: n, k: k, a: a.baseAddress!, b: b.baseAddress!,
                                      c: c.baseAddress!, transposedProduct: true)
                call.bFinite = xKnownFinite
                let parts = call.pieces(pieces, byColumns: true)
                DispatchQueue.concurrentPerform(iterations: parts.count) { parts[$0].run(threads: 1) }
            } } }
            return c
        }

        /// The whole product with every row computed: the GEMM call `MatrixCall` makes without the skip.
        func computedInFull() -> [Float] {
            var c = [Float](repeating: .nan, count: m * n)
            GEMM.multiply(transposeA: true, transposeB: false, m: n, n: m, k: k, alpha: 1, a: x, lda: n, b: dy, ldb: m,
                          beta: 0, c: &c, ldc: n, transposeC: true, threads: 1)
            return c
        }

        /// Whether `ZeroRowSkip` takes this product (into a scratch C).
        func skips() -> Bool {
            var c = [Float](repeating: .nan, count: m * n)
            return dy.withUnsafeBufferPointer { a in x.withUnsafeBufferPointer { b in c.withUnsafeMutableBufferPointer { c in
                ZeroRowSkip.run(m: m, n: n, k: k, a: a.baseAddress!, lda: m, b: b.baseAddress!, ldb: n, c: c.baseAddress!, ldc: n) { _, _, _, _, _ in }
            } } }
        }
    }

    /// With a third of the units dead, the skip runs and gives the full product's bits (dead rows +0 even
    /// where C held NaN), whole or in 2 and 3 pieces at the same time; 81 live units of 100 so that 15 zero columns
    /// pad A' and land in dead rows.
    func testDeadUnitsGiveTheFullProductsBits() {
        for (m, deadCount) in [(96, 32), (100, 19)] {
            let dead = Set((0..<deadCount).map { ($0 * 7 + 3) % m })
            let g = Gradient(m: m, n: 150, k: 40, dead: dead)
            XCTAssertTrue(g.skips(), "m \(m)")
            let full = g.computedInFull()
            XCTAssertTrue(dead.allSatisfy { r in (0..<g.n).allSatisfy { full[r * g.n + $0].bitPattern == 0 } }, "the full product's dead rows are +0")
            for pieces in [1, 2, 3] {
                let got = g.viaMatrixCall(pieces: pieces)
                XCTAssertTrue(zip(got, full).allSatisfy { $0.bitPattern == $1.bitPattern }, "m \(m), \(pieces) pieces")
            }
        }
    }

    /// Pieces bound once and run over new data each time, one after another or at the same time, with runs
    /// that skip (different dead units) and one that does not (too few dead): each run gives the full
    /// product's bits (the pieces' shared copy of dh's live columns keeps its runs apart).
    func testPiecesSharingTheCopyOverManyRuns() {
        let (m, n, k) = (96, 150, 40)
        let dy = UnsafeMutablePointer<Float>.allocate(capacity: k * m), x = UnsafeMutablePointer<Float>.allocate(capacity: k * n)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
        defer { dy.deallocate(); x.deallocate(); c.deallocate() }
        let call = MatrixCall(transposeA: true, transposeB: false, m: m, n: n, k: k, a: dy, b: x, c: c, transposedProduct: true)
        for concurrently in [false, true] {
            let pieces = call.pieces(3, byColumns: true)
            for (run, deadCount) in [40, 20, 5, 33, 0, 50].enumerated() {
                let g = Gradient(m: m, n: n, k: k, dead: Set((0..<deadCount).map { ($0 * 5 + run) % m }))
                dy.update(from: g.dy, count: k * m)
                x.update(from: g.x, count: k * n)
                c.update(repeating: .nan, count: m * n)
                if concurrently {
                    DispatchQueue.concurrentPerform(iterations: pieces.count) { pieces[$0].run(threads: 1) }
                } else {
                    for piece in pieces { piece.run(threads: 1) }
                }
                let full = g.computedInFull()
                XCTAssertEqual(g.skips(), deadCount >= 16, "run \(run)")
                XCTAssertTrue((0..<m * n).allSatisfy { c[$0].bitPattern == full[$0].bitPattern },
                              "run \(run), \(deadCount) dead\(concurrently ? ", concurrently" : "")")
            }
        }
    }

    /// The finiteness the skip learns on the way, handed to the GEMM so that it does not check again:
    /// x bound as a finite batch, and dh's own, found by the scan for its live columns. With x known
    /// finite the bits are the full product's; with an infinity or a NaN in a live unit of dh, the
    /// GEMM is told dh' is not finite and, as before, does not skip x's zero steps against it (the
    /// full product's NaN from ∞·0 appear in the same places).
    func testFinitenessFoundByTheSkipGivesTheFullProductsBits() {
        var g = Gradient(m: 96, n: 150, k: 40, dead: Set((0..<40).map { ($0 * 7 + 3) % 96 }))
        // Pixels 92% zeros, so that the GEMM skips x's zero steps (an 8-pixel panel is then zero in
        // about half of the 40 examples), where it multiplies only finite values of dh'.
        for i in g.x.indices where i % 13 != 0 { g.x[i] = 0 }
        for pieces in [1, 2] {
            XCTAssertTrue(GEMMTests.same(g.viaMatrixCall(pieces: pieces, xKnownFinite: true), g.computedInFull()), "\(pieces) pieces")
        }
        let live = (0..<96).first { r in (0..<40).allSatisfy { ($0 * 7 + 3) % 96 != r } }!
        for bad in [Float.infinity, -.infinity, .nan] {
            var h = g
            h.dy[9 * 96 + live] = bad
            XCTAssertTrue(h.skips(), "a non-finite dh does not stop the skip of its dead units")
            let got = h.viaMatrixCall(pieces: 2, xKnownFinite: true), full = h.computedInFull()
            XCTAssertTrue(got.contains { $0.isNaN }, "\(bad)")
            XCTAssertTrue(GEMMTests.same(got, full), "\(bad) in live unit \(live)")
        }
    }

    /// Not taken when fewer than an eighth of the rows (or fewer than 16) are dead, or when x holds an
    /// infinity (then the dead rows are NaN, ∞·0, as in the full product).
    func testFewDeadUnitsOrNonFiniteDataRunTheFullProduct() {
        let few = Gradient(m: 96, n: 40, k: 30, dead: Set(0..<11))
        XCTAssertFalse(few.skips())
        XCTAssertTrue(GEMMTests.same(few.viaMatrixCall(), few.computedInFull()))
        let sixteenOf200 = Gradient(m: 200, n: 40, k: 30, dead: Set(0..<16))
        XCTAssertFalse(sixteenOf200.skips(), "16 dead of 200 is under an eighth")

        var infinite = Gradient(m: 96, n: 40, k: 30, dead: Set(0..<40))
        XCTAssertTrue(infinite.skips())
        infinite.x[5 * 40 + 7] = .infinity
        XCTAssertFalse(infinite.skips())
        let got = infinite.viaMatrixCall(), full = infinite.computedInFull()
        XCTAssertTrue(got[0 * 40 + 7].isNaN, "dead row, column of the infinity: ∞·0")
        XCTAssertTrue(GEMMTests.same(got, full))
    }

    func testLiveColumnsAndChecks() {
        let (k, m) = (3, 37)
        var a = [Float](repeating: 0, count: k * m)
        a[1 * m + 4] = 1; a[2 * m + 36] = -2; a[0 * m + 17] = -0.0; a[2 * m + 20] = .nan
        var live = [Int32](repeating: -1, count: m)
        let (count, finite) = a.withUnsafeBufferPointer { ZeroRowSkip.liveColumns($0.baseAddress!, lda: m, k: k, m: m, into: &live) }
        XCTAssertEqual(Array(live[0..<count]), [4, 20, 36], "-0 is zero, NaN is not")
        XCTAssertFalse(finite, "the NaN in column 20")
        // Finiteness in the 16-wide vectors and in the scalar tail (columns 32…36), ±∞ and NaN alike.
        for (index, value) in [(1 * m + 4, Float.infinity), (0 * m + 36, -.infinity), (2 * m + 33, .nan), (1 * m + 9, .greatestFiniteMagnitude)] {
            var b = [Float](repeating: 0, count: k * m)
            b[2 * m + 1] = -5
            b[index] = value
            let result = b.withUnsafeBufferPointer { ZeroRowSkip.liveColumns($0.baseAddress!, lda: m, k: k, m: m, into: &live) }
            XCTAssertEqual(result.count, 2)
            XCTAssertEqual(result.finite, value.isFinite, "\(value) at column \(index % m)")
        }
        XCTAssertTrue(ZeroRowSkip.allFinite([1, -3, 0, .greatestFiniteMagnitude], ldb: 4, rows: 1, columns: 4))
        XCTAssertFalse(ZeroRowSkip.allFinite([Float](repeating: 1, count: 17) + [-.infinity], ldb: 18, rows: 1, columns: 18))
        XCTAssertFalse(ZeroRowSkip.allFinite([Float](repeating: 1, count: 40).enumerated().map { $0.offset == 21 ? .nan : $0.element },
                                             ldb: 20, rows: 2, columns: 20))
        XCTAssertTrue(ZeroRowSkip.allPositiveZero([Float](repeating: 0, count: 21), 21))
        XCTAssertFalse(ZeroRowSkip.allPositiveZero([Float](repeating: 0, count: 20) + [-0.0], 21), "-0 is not +0")
        XCTAssertEqual(ZeroRowSkip.paddedWidth(258), 272)
        XCTAssertEqual(ZeroRowSkip.paddedWidth(250), 272, "256 floats would be packed: 16 more")
    }
}
