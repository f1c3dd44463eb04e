import Dispatch
import XCTest
@testable import VAECore

/// `MatrixCall.pieces`: the pieces of a call cover its C exactly once and give the bits of the whole
/// call, for odd shapes, the 8- and 16-wide tails that even column pieces get, and the balanced pieces
/// of a transposed product, whose cut moves from run to run (`ColumnBalance`).
final class MatrixCallPiecesTests: XCTestCase {
    typealias LCG = GEMMTests.LCG

    /// Operands of a call (minimal leading dimensions). A is sparse when `zeros` (two k steps in three
    /// zero in every row, and a third of the others), so the GEMM's zero-skipping and its sparse tail
    /// kernels run.
    struct Operands {
        var a: [Float], b: [Float]
        init(m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool, zeros: Bool, seed: UInt64) {
            var rng = LCG(state: seed)
            a = rng.fill(m * k)
            b = rng.fill(k * n)
            if zeros {
                for i in 0..<m { for p in 0..<k where p % 3 != 0 || rng.next() < -0.33 { a[transposeA ? p * m + i : i * k + p] = 0 } }
            }
        }
    }

    /// C computed by the whole call, into memory that starts as NaN.
    func whole(_ make: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> MatrixCall,
               _ ops: Operands, cCount: Int) -> [Float] {
        var c = [Float](repeating: .nan, count: cCount)
        ops.a.withUnsafeBufferPointer { a in ops.b.withUnsafeBufferPointer { b in c.withUnsafeMutableBufferPointer {
            make(a.baseAddress!, b.baseAddress!, $0.baseAddress!).run(threads: 1)
        } } }
        return c
    }

    /// C computed by the call's `pieces`, one after another, into memory that starts as NaN.
    func inPieces(_ make: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> MatrixCall,
                  _ ops: Operands, cCount: Int, count: Int, byColumns: Bool) -> (c: [Float], pieces: [MatrixCall]) {
        var c = [Float](repeating: .nan, count: cCount)
        var pieces: [MatrixCall] = []
        ops.a.withUnsafeBufferPointer { a in ops.b.withUnsafeBufferPointer { b in c.withUnsafeMutableBufferPointer { cp in
            pieces = make(a.baseAddress!, b.baseAddress!, cp.baseAddress!).pieces(count, byColumns: byColumns)
            for piece in pieces { piece.run(threads: 1) }
        } } }
        return (c, pieces)
    }

    /// Checks that `ranges` tile 0..<length in order, each starting on the grid of `unit` columns.
    func assertTiles(_ ranges: [Range<Int>], _ length: Int, unit: Int = 8, _ label: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        var next = 0
        for r in ranges {
            XCTAssertEqual(r.lowerBound, next, "\(label): pieces \(ranges) leave a gap or overlap", file: file, line: line)
            XCTAssertFalse(r.isEmpty, "\(label): empty piece in \(ranges)", file: file, line: line)
            XCTAssertEqual(r.lowerBound % unit, 0, "\(label): a cut off the \(unit)-column grid in \(ranges)", file: file, line: line)
            next = r.upperBound
        }
        XCTAssertEqual(next, length, "\(label): pieces \(ranges) do not reach the end", file: file, line: line)
    }

    func same(_ x: [Float], _ y: [Float]) -> Bool { x.map(\.bitPattern) == y.map(\.bitPattern) }

    /// Every transpose, odd sizes, sparse and dense A, 2 and 3 pieces by columns (with an epilogue, at
    /// 16) and as the call chooses (by columns at 8, or by rows).
    func testPiecesTileCAndGiveTheWholeCallsBits() {
        // Cut at 8, n = 80: two pieces of 40 (32 + an 8-wide tail); n = 100: 48 + 52 (32 + 16, and
        // 32 + 16 + 8 with 4 columns of padding); n = 200 on 3 pieces: 64 + 72 + 64; n = 75 and
        // m = 37: partial panels.
        let shapes = [(24, 80, 37), (16, 100, 50), (37, 75, 20), (8, 200, 29), (45, 130, 9)]
        for (m, n, k) in shapes {
            for (ta, tb) in GEMMTests.transposes {
                for zeros in [false, true] {
                    let ops = Operands(m: m, n: n, k: k, transposeA: ta, transposeB: tb, zeros: zeros, seed: UInt64(m * n + k))
                    let make = { (a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) in
                        MatrixCall(transposeA: ta, transposeB: tb, m: m, n: n, k: k, a: a, b: b, c: c)
                    }
                    let want = whole(make, ops, cCount: m * n)
                    XCTAssertFalse(want.contains { $0.isNaN })
                    for count in [2, 3] {
                        for forced in [true, false] {
                            let label = "m \(m) n \(n) k \(k) transposes \(ta) \(tb) zeros \(zeros), \(count) pieces\(forced ? " by columns" : "")"
                            let (got, pieces) = inPieces(make, ops, cCount: m * n, count: count, byColumns: forced)
                            XCTAssertTrue(same(got, want), label)
                            XCTAssertEqual(pieces.count, count, label)
                            if pieces[0].n < n {
                                let unit = forced ? 16 : 8
                                assertTiles(pieces.map(\.columns), n, unit: unit, label)
                                XCTAssertEqual(pieces.map(\.n), pieces.map(\.columns.count), label)
                            } else {
                                XCTAssertFalse(forced, label)
                                XCTAssertEqual(pieces.map(\.m).reduce(0, +), m, label)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Column pieces are as even as the 8-column grid allows (h·W₄ᵀ's n = 784: 392 + 392), or the
    /// 16-column grid for pieces with an epilogue (x·W₁ᵀ's n = 400: 208 + 192).
    func testColumnPiecesAreOfEvenWidths() {
        var x: Float = 0
        withUnsafeMutablePointer(to: &x) { p in
            for (n, at8, at16) in [(400, [200, 200], [208, 192]), (784, [392, 392], [400, 384]), (100, [48, 52], [48, 52]),
                                   (64, [32, 32], [32, 32]), (200, [64, 72, 64], [64, 64, 72])] {
                let call = MatrixCall(transposeA: false, transposeB: true, m: 8, n: n, k: 1, a: p, b: p, c: p)
                XCTAssertEqual(call.pieces(at8.count).map(\.columns.count), at8, "n \(n)")
                XCTAssertEqual(call.pieces(at16.count, byColumns: true).map(\.columns.count), at16, "n \(n), epilogue")
            }
        }
    }

    /// A weight gradient Σ dy⊗x computed transposed, with x denser in some columns than others (a
    /// block of dense columns, as the centre of an image). The pieces are bound once, like a stage's,
    /// and run over new data each time: they give the whole call's bits and tile C in every run,
    /// whether run one after another or at the same time, and the cut moves to where the previous
    /// run's costs (a scalar count here) are split evenly.
    func testBalancedPiecesOfATransposedProduct() {
        let (m, n, k) = (40, 203, 50)     // C 40×203: dy [50×40]ᵀ · x [50×203]; 203 = 25 panels + 3 columns
        let dy = UnsafeMutablePointer<Float>.allocate(capacity: k * m), x = UnsafeMutablePointer<Float>.allocate(capacity: k * n)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: m * n), want = UnsafeMutablePointer<Float>.allocate(capacity: m * n)
        defer { dy.deallocate(); x.deallocate(); c.deallocate(); want.deallocate() }
        /// New data: x dense in columns 16..<64, elsewhere non-zero in one example in fifty.
        func fill(seed: UInt64) {
            var rng = LCG(state: seed)
            for i in 0..<k * m { dy[i] = rng.next() }
            for p in 0..<k { for j in 0..<n {
                let v = rng.next()
                x[p * n + j] = (16..<64).contains(j) || rng.next() >= 0.96 ? v : 0
            } }
        }
        /// Each 8-column panel's cost by a scalar count: its k steps (all of them when more than 3/4
        /// are non-zero, or for the partial panel) plus the fixed cost.
        func costs() -> [Int] {
            stride(from: 0, to: n, by: 8).map { j0 in
                let steps = (0..<k).filter { p in (j0..<min(n, j0 + 8)).contains { x[p * n + $0] != 0 } }.count
                return (j0 + 8 <= n && steps <= k * 3 / 4 ? steps : k) + ColumnBalance.costPerPanel
            }
        }
        let whole = MatrixCall(transposeA: true, transposeB: false, m: m, n: n, k: k, a: dy, b: x, c: want, transposedProduct: true)
        let call = MatrixCall(transposeA: true, transposeB: false, m: m, n: n, k: k, a: dy, b: x, c: c, transposedProduct: true)
        for count in [2, 3] {
            for concurrently in [false, true] {
                let pieces = call.pieces(count, byColumns: true)
                var firstCuts: [Range<Int>] = [], previousCosts: [Int] = []
                for run in 0..<4 {
                    let label = "\(count) pieces, run \(run)\(concurrently ? ", concurrently" : "")"
                    fill(seed: UInt64(10 + run))
                    whole.run(threads: 1)
                    c.update(repeating: .nan, count: m * n)
                    if concurrently {
                        DispatchQueue.concurrentPerform(iterations: pieces.count) { pieces[$0].run(threads: 1) }
                    } else {
                        for piece in pieces { piece.run(threads: 1) }
                    }
                    XCTAssertTrue((0..<m * n).allSatisfy { c[$0].bitPattern == want[$0].bitPattern }, label)
                    let ranges = pieces.map(\.columns)
                    assertTiles(ranges, n, label)
                    if run == 0 {
                        firstCuts = ranges
                        XCTAssertEqual(ranges.map(\.count), count == 2 ? [104, 99] : [72, 64, 67], label)   // equal panels
                    } else {
                        // The first piece holds the dense columns: it gets fewer columns than at first.
                        XCTAssertLessThan(ranges[0].count, firstCuts[0].count, label)
                        if count == 2 {
                            let half = previousCosts.reduce(0, +) / 2
                            let sums = (1..<previousCosts.count).map { previousCosts[0..<$0].reduce(0, +) }
                            let nearest = sums.indices.min { abs(sums[$0] - half) < abs(sums[$1] - half) }!
                            XCTAssertEqual(ranges[0], 0..<(nearest + 1) * 8, label)
                        }
                    }
                    previousCosts = costs()
                }
            }
        }
    }

    /// The cut from given counts: the boundaries nearest to equal shares of the cost (counts plus a
    /// fixed cost per panel), each piece keeping at least one panel.
    func testColumnBalanceCutsAtEqualCost() {
        func cuts(_ steps: [Int32], parts: Int, columns: Int? = nil) -> [Int] {
            let balance = ColumnBalance(parts: parts, columns: columns ?? steps.count * 8)
            for (q, s) in steps.enumerated() { balance.steps[q] = s }
            for p in 0..<parts { _ = balance.begin(piece: p); balance.end() }
            return balance.nextCuts
        }
        let c = ColumnBalance.costPerPanel
        // No counts yet: equal panels.
        XCTAssertEqual(ColumnBalance(parts: 2, columns: 784).nextCuts, [0, 392, 784])
        XCTAssertEqual(ColumnBalance(parts: 3, columns: 80).nextCuts, [0, 24, 56, 80])
        // Panel 0 costs as much as the other nine together: it is a piece of its own.
        XCTAssertEqual(cuts([Int32(9 * c)] + [Int32](repeating: 0, count: 9), parts: 2), [0, 8, 80])
        // Costs 1, 1, 1, 1, 4 (in units of the fixed cost): halves at 4 of 8, the nearest boundary is after panel 3.
        XCTAssertEqual(cuts([0, 0, 0, 0, Int32(3 * c)], parts: 2), [0, 32, 40])
        // Everything in the last panel: each of the first pieces still gets one panel.
        XCTAssertEqual(cuts([0, 0, 0, 1000], parts: 3), [0, 16, 24, 32])
        // A partial last panel (columns 27 = 3 panels + 3).
        XCTAssertEqual(cuts([0, 0, 0, 0], parts: 2, columns: 27), [0, 16, 27])
        // The cut is taken only once all pieces of a run have ended.
        let balance = ColumnBalance(parts: 2, columns: 32)
        balance.steps[0] = Int32(10 * c)
        _ = balance.begin(piece: 0); balance.end()
        XCTAssertEqual(balance.nextCuts, [0, 16, 32])
        _ = balance.begin(piece: 1); balance.end()
        XCTAssertEqual(balance.nextCuts, [0, 8, 32])
    }
}
