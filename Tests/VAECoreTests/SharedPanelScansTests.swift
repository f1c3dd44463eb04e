import Dispatch
import XCTest
@testable import VAECore

/// Column pieces of a product whose A is stored m×k and read in place share the zero scans of A
/// (`SharedPanelScans`): they give the bits of the whole call and of the same pieces scanning on their own,
/// for a sparse, image-like A and a dense one, run one after another (in either order) or at the same
/// time, over new data at every run; and the scans are really shared (made once per run) for the sparse A
/// and not made at all for the dense one.
final class SharedPanelScansTests: XCTestCase {
    typealias LCG = GEMMTests.LCG

    // 5 panels of 8 rows (an odd count, so the walks from both ends meet inside one); k = 784 as the
    // pixels of an image, in 2 k-blocks of 392; n = 168 (the default): pieces of 80 and 88
    // columns (at 16), each with whole 32-wide panels for the pair tiles and narrow tail panels.
    let (m, k) = (40, 784)

    /// Rows of 28×28 "images": a ring around a point near the centre, zero elsewhere (about 80% zeros,
    /// and the first 64 pixels of the first rows are all zero, so the GEMM takes A for sparse), with
    /// holes, and some −0 among the zeros. `dense`: every value non-zero.
    func fillA(_ a: UnsafeMutablePointer<Float>, lda: Int, dense: Bool, seed: UInt64) {
        var rng = LCG(state: seed)
        for i in 0..<m {
            let cx = 14 + Float(i % 7) - 3, cy = 14 + Float(i % 5) - 2
            let outer = 6 + Float(i % 4), inner = outer - 2.5 - Float(i % 3)
            for p in 0..<lda {
                let v = rng.next()
                let (x, y) = (Float(p % 28), Float(p / 28))
                let r = ((x - cx) * (x - cx) + (y - cy) * (y - cy)).squareRoot()
                let onRing = r >= inner && r <= outer && abs(v) > 0.1
                a[i * lda + p] = dense ? (v == 0 ? 0.5 : v) : (onRing ? abs(v) : (p % 11 == 0 ? -0.0 : 0))
            }
        }
    }

    func testSharedScansGiveTheBitsOfTheWholeCall() {
        for transposeB in [true, false] {
            for dense in [false, true] {
                sharedScansGiveTheBitsOfTheWholeCall(transposeB: transposeB, dense: dense)
            }
        }
        // Pieces of equal width (80 + 80): none scans ahead, the second walks the panels downwards.
        sharedScansGiveTheBitsOfTheWholeCall(n: 160, transposeB: true, dense: false)
    }

    func sharedScansGiveTheBitsOfTheWholeCall(n: Int = 168, transposeB: Bool, dense: Bool) {
        let lda = k + 3, ldb = transposeB ? k + 5 : n + 3
        let a = UnsafeMutablePointer<Float>.allocate(capacity: m * lda), b = UnsafeMutablePointer<Float>.allocate(capacity: k * ldb + n)
        let want = UnsafeMutablePointer<Float>.allocate(capacity: m * n), c = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
        defer { a.deallocate(); b.deallocate(); want.deallocate(); c.deallocate() }
        var rng = LCG(state: 41)
        for i in 0..<(k * ldb + n) { b[i] = rng.next() }
        let call = MatrixCall(transposeA: false, transposeB: transposeB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c)
        let whole = MatrixCall(transposeA: false, transposeB: transposeB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: want)
        let pieces = call.pieces(2, byColumns: true)
        let alone = pieces.map { call.columnPiece($0.columns) }
        XCTAssertEqual(pieces.map(\.columns.count), n == 168 ? [80, 88] : [80, 80])
        guard let scans = pieces[0].sharedScans else { return XCTFail("no shared scans") }
        XCTAssertTrue(pieces[1].sharedScans === scans && alone.allSatisfy { $0.sharedScans == nil })
        XCTAssertEqual([scans.kBlocks, scans.panels, scans.kc], [2, 5, 392])
        /// Whether C holds the whole call's bits.
        func matches() -> Bool { (0..<m * n).allSatisfy { c[$0].bitPattern == want[$0].bitPattern } }

        let orders: [(String, () -> Void)] = [
            ("in order", { for piece in pieces { piece.run(threads: 1) } }),
            ("reversed", { for piece in pieces.reversed() { piece.run(threads: 1) } }),
            ("at the same time", { DispatchQueue.concurrentPerform(iterations: pieces.count) { pieces[$0].run(threads: 1) } }),
            ("at the same time, 2 threads each", { DispatchQueue.concurrentPerform(iterations: pieces.count) { pieces[$0].run(threads: 2) } }),
        ]
        for (run, (order, runPieces)) in orders.enumerated() {
            let label = "n \(n), transposeB \(transposeB)\(dense ? ", dense A" : ""), run \(run + 1) \(order)"
            fillA(a, lda: lda, dense: dense, seed: UInt64(50 + run))
            whole.run(threads: 1)
            XCTAssertFalse((0..<m * n).contains { want[$0].isNaN }, label)
            c.update(repeating: .nan, count: m * n)
            for piece in alone { piece.run(threads: 1) }
            XCTAssertTrue(matches(), "\(label): pieces scanning alone")
            c.update(repeating: .nan, count: m * n)
            runPieces()
            XCTAssertTrue(matches(), "\(label): pieces sharing their scans")
            // Sparse A: every panel of every k-block scanned in this run; dense A: none ever.
            for block in 0..<scans.kBlocks {
                for panel in 0..<scans.panels {
                    XCTAssertEqual(scans.claimingRun(block: block, panel: panel), dense ? 0 : run + 1, "\(label): block \(block) panel \(panel)")
                }
            }
        }
    }

    /// The lists made from shared masks are those `nonZeroSteps` makes, element for element, whether made
    /// by the piece that scanned, by a piece that reads its masks, or after a scan ahead: k-blocks of 16·n
    /// steps and with tails of 1 to 15 steps, panels from empty to dense (those give up the same way),
    /// −0 (zero), NaN and subnormals (non-zero).
    func testListsFromMasksAreThoseOfNonZeroSteps() {
        let panels = 12, lda = 403
        var rng = LCG(state: 47)
        var a = [Float](repeating: 0, count: 8 * panels * lda)
        for panel in 0..<panels {
            // Density from 0 to 1 across the panels, each pair of rows its own.
            for i in 0..<8 { for p in 0..<lda {
                let v = rng.next()
                let keep = abs(v) < Float(panel) / Float(panels - 1) * Float(1 + i % 3) / 3
                a[(panel * 8 + i) * lda + p] = keep ? v : (p % 7 == 0 ? -0.0 : 0)
            } }
        }
        a[(3 * 8 + 2) * lda + 5] = .nan
        a[(2 * 8 + 7) * lda + 200] = .leastNonzeroMagnitude
        a.withUnsafeBufferPointer { buffer in
            let a = buffer.baseAddress!
            for kc in [400, 384, 385, 399, 17, 16, 3] {
                let limit = kc * 3 / 4
                for ahead in [false, true] {
                    let scans = SharedPanelScans(kBlocks: 1, panels: panels, kc: kc, widths: [16, 8])
                    for run in 1...2 {
                        let scanner = scans.begin(piece: 0), ahead1 = scans.begin(piece: 1)
                        XCTAssertTrue(ahead1.scansAhead && !scanner.scansAhead)
                        XCTAssertEqual([scanner.run, ahead1.run], [run, run])
                        let reader = ahead ? scanner : ahead1, first = ahead ? ahead1 : scanner
                        for panel in 0..<panels {
                            let rows = a + panel * 8 * lda + (run - 1) * (lda - kc)
                            if ahead { scans.scanAhead(first, block: 0, panel: panel, rows: rows, lda: lda, kc: kc, limit: limit) }
                            // The panel's list, then the pair lists at stride kc + 16.
                            var want = [Int32](repeating: -1, count: 5 * kc + 64)
                            let (wantCount, wantPairs) = want.withUnsafeMutableBufferPointer { w in
                                var pairs = GEMM.PairLists(lists: w.baseAddress! + kc, stride: kc + 16)
                                let count = GEMM.nonZeroSteps(rows, lda: lda, kc: kc, limit: limit, into: w.baseAddress!, pairs: &pairs)
                                return (count, pairs.counts)
                            }
                            for (role, piece) in ahead ? [("after a scan ahead", reader)] : [("scanner", first), ("reader", reader)] {
                                let label = "kc \(kc), panel \(panel), run \(run), \(role)"
                                var got = [Int32](repeating: -2, count: 5 * kc + 64)
                                let (count, pairCounts) = got.withUnsafeMutableBufferPointer { g in
                                    var pairs = GEMM.PairLists(lists: g.baseAddress! + kc, stride: kc + 16)
                                    let count = scans.scan(piece, block: 0, panel: panel, rows: rows, lda: lda, kc: kc, limit: limit,
                                                           into: g.baseAddress!, pairs: &pairs)
                                    return (count, pairs.counts)
                                }
                                XCTAssertEqual(count, wantCount, label)
                                guard let count, count <= limit else { continue }
                                XCTAssertEqual(got[0..<count], want[0..<count], label)
                                XCTAssertEqual(pairCounts, wantPairs, label)
                                for g in 0..<4 {
                                    let start = kc + g * (kc + 16), length = Int(wantPairs[g])
                                    XCTAssertEqual(got[start..<start + length], want[start..<start + length], "\(label), pair \(g)")
                                }
                            }
                            XCTAssertEqual(scans.claimingRun(block: 0, panel: panel), run)
                        }
                    }
                }
            }
        }
        // Some panels gave up and some did not, at every length.
        let counts = a.withUnsafeBufferPointer { buffer in
            (0..<panels).map { panel in
                var steps = [Int32](repeating: 0, count: 416)
                return GEMM.nonZeroSteps(buffer.baseAddress! + panel * 8 * lda, lda: lda, kc: 400, limit: 300, into: &steps)
            }
        }
        XCTAssertTrue(counts.contains(301) && counts.contains { $0 < 100 }, "\(counts)")
    }

    /// A piece run more often than the others (against the contract) leaves scans tagged with a later
    /// run than the others' next one: they never read those, but scan on their own, and still give the
    /// whole call's bits.
    func testAPieceAheadOfTheOthersScansAlone() {
        let n = 168, lda = k + 3, ldb = k + 5
        let a = UnsafeMutablePointer<Float>.allocate(capacity: m * lda), b = UnsafeMutablePointer<Float>.allocate(capacity: n * ldb)
        let want = UnsafeMutablePointer<Float>.allocate(capacity: m * n), c = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
        defer { a.deallocate(); b.deallocate(); want.deallocate(); c.deallocate() }
        var rng = LCG(state: 43)
        for i in 0..<n * ldb { b[i] = rng.next() }
        let call = MatrixCall(transposeA: false, transposeB: true, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c)
        let whole = MatrixCall(transposeA: false, transposeB: true, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: want)
        let pieces = call.pieces(2, byColumns: true)
        guard let scans = pieces[0].sharedScans else { return XCTFail("no shared scans") }
        func check(_ label: String) {
            whole.run(threads: 1)
            XCTAssertTrue((0..<m * n).allSatisfy { c[$0].bitPattern == want[$0].bitPattern }, label)
        }
        // Run 1 of both pieces.
        fillA(a, lda: lda, dense: false, seed: 60)
        for piece in pieces { piece.run(threads: 1) }
        check("run 1")
        // Piece 0 runs twice more (its runs 2 and 3), piece 1 once (its run 2) on the data of piece 0's run 3.
        fillA(a, lda: lda, dense: false, seed: 61)
        pieces[0].run(threads: 1)
        fillA(a, lda: lda, dense: false, seed: 62)
        pieces[0].run(threads: 1)
        pieces[1].run(threads: 1)
        XCTAssertEqual(scans.claimingRun(block: 0, panel: 0), 3)
        check("piece 1 behind piece 0")
    }
}
