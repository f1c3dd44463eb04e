import Synchronization

/// The rows of a weight gradient that belong to dead ReLU units, skipped.
///
/// A transposed weight gradient (`MatrixCall.transposedProduct`: C[m×n] = dhᵀ·x, dh stored k×m, x the
/// data) has a row per unit of the layer. A unit whose ReLU is off in every example of the batch has a
/// column of dh that is all ±0, and then its row of C is +0: each term is ±0 when x is finite, and an
/// accumulator that starts at +0 stays +0 under round-to-nearest. Such units are common: from ~130
/// steps into the mnist step on, 141–147 of the encoder's 400 units were off in every batch (counted in
/// every call over 1,000 steps), so 35% of Σ dh⊗x's work gave zeros.
///
/// The live columns of dh are copied side by side (then zero columns up to a multiple of 16, so that the
/// GEMM's quad tiles take every column) and the product runs on those, storing each column of op(C)
/// straight into its unit's row of C (`GEMM.multiply`'s `cRows`); the dead rows are set to +0 (only
/// where they are not +0 already: in a run they usually are). Same values as the whole product (the
/// GEMM computes an element with the same operations wherever it sits, up to the sign of a zero sum),
/// so the same bits whatever the thread count or cut. Used only when x is finite (∞·0 would be NaN in
/// the full product) and at least an eighth of the rows, and 16, are dead.
///
/// Measured on the mnist step (`vaec bench --stages`, 1,000 steps, interleaved with the code before;
/// Σ dh⊗x is the last stage, two column pieces): fastest 178–186 → 164–172 µs, means 201–209 →
/// 185–207 µs. A piece's product took 185 → ~145 µs (272 of 400 columns; the scans of x and the
/// stores of C do not shrink with them); finding the live columns and checking x cost ~5 µs each, the
/// copy of the live columns ~15 µs of scalar work (shared by the pieces, `SharedCopy`), and checking
/// that the dead rows hold +0 ~15 µs (reading lines of C; writing them cost as much).
///
/// Checks not made twice: the scan for the live columns also tells whether dh is finite (each column's
/// largest magnitude), which the GEMM is given instead of reading A' again before skipping x's zero
/// steps; and a data batch bound as finite (`Executable.bind(_:to:finite:)`: the trainer's, from a data
/// set checked at load) is not checked here. Stage minima of Σdh⊗x 164–169 → 155–160 µs (three
/// interleaved rounds; same bits). Skipping the +0 check of the dead rows too (a timing-only hack)
/// took 4–8 µs more, but a "known +0" state would have to learn of every other writer of C.
enum ZeroRowSkip {
    /// The share of dead rows from which the skip runs: 1/`minimumShareDivisor`.
    static let minimumShareDivisor = 8

    /// Computes C[m×n] = Aᵀ·B, A stored k×m (lda), B stored k×n (ldb), C row-major (ldc), with the
    /// rows of C whose column of A is all ±0 set to +0 without computing them. Returns false (with C
    /// untouched) when too few such rows exist or B is not finite: the caller runs the product.
    /// `bFinite`: the caller knows B to be finite (the data batch, from a data set checked at load), so
    /// it is not checked again. `product(a', lda', m', rows, finite)` runs the GEMM of A' (k×m': the
    /// live columns of A side by side, then zero columns) with op(C)'s column j stored in C's row
    /// rows[j]; `finite` tells whether every value of A (so of A') is finite, found by the scan for the
    /// live columns, so that the GEMM need not read A' again to know it.
    static func run(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                    c: UnsafeMutablePointer<Float>, ldc: Int, bFinite: Bool = false, shared: (copy: SharedCopy, piece: Int)? = nil,
                    product: (_ a: UnsafePointer<Float>, _ lda: Int, _ m: Int, _ rows: UnsafePointer<Int32>, _ finite: Bool) -> Void) -> Bool {
        guard m >= 16, n >= 1, k >= 1 else { return false }
        return withBuffers { buffers in
            buffers.reserve(rows: m, compactA: shared == nil ? k * paddedWidth(m) : 1)
            // rows: the live columns of A in order, then the dead ones. The same in every piece.
            let rows = buffers.rows
            let (live, aFinite) = liveColumns(a, lda: lda, k: k, m: m, into: rows)
            let dead = m - live
            guard dead >= 16, dead * minimumShareDivisor >= m else { return false }
            // A': the live columns, then zero columns up to a multiple of 16. Their columns of op(C) are +0
            // and go to the first dead rows (there are at least 16), which hold +0. The pieces of a product
            // make it together, whether or not each then uses it (the check of B is each piece's own).
            let width = paddedWidth(live), columns = (live + 15) / 16 * 16
            let compactA: UnsafeMutablePointer<Float>
            if let shared {
                compactA = shared.copy.copy(piece: shared.piece, a, lda: lda, k: k, live: rows, count: live, columns: columns, width: width)
            } else {
                compactA = buffers.compactA
                copy(a, lda: lda, rows: 0..<k, live: rows, count: live, columns: columns, into: compactA, width: width)
            }
            guard bFinite || allFinite(b, ldb: ldb, rows: k, columns: n) else { return false }
            var next = 0, d = live
            for i in 0..<m {
                if next < live && Int(rows[next]) == i { next += 1 } else { rows[d] = Int32(i); d += 1 }
            }
            for r in live..<m {
                let row = c + Int(rows[r]) * ldc
                if !allPositiveZero(row, n) { row.update(repeating: 0, count: n) }
            }
            if live > 0 { product(compactA, width, columns, rows, aFinite) }
            return true
        }
    }

    /// Rows `rows` of A' (width floats apart): the `count` live columns of A listed in `live`, then zeros
    /// up to `columns`.
    static func copy(_ a: UnsafePointer<Float>, lda: Int, rows: Range<Int>, live: UnsafePointer<Int32>, count: Int, columns: Int,
                     into compactA: UnsafeMutablePointer<Float>, width: Int) {
        for p in rows {
            let source = a + p * lda, destination = compactA + p * width
            for r in 0..<count { destination[r] = source[Int(live[r])] }
            for r in count..<columns { destination[r] = 0 }
        }
    }

    /// A' made once per run for all the column pieces of a product (`MatrixCall.pieces`), each copying the
    /// rows of the parts it claims, instead of whole by each (the copy is scalar: ~15 µs for the mnist
    /// step's 128 × 272). Each run of the product must run every piece once, and runs must not overlap
    /// (a stage's tasks): a piece waits only for parts claimed by pieces that are running.
    final class SharedCopy: @unchecked Sendable {
        let parts: Int
        /// A' of the latest run, room for every live count (`paddedWidth` only grows with the count).
        private let buffer: UnsafeMutablePointer<Float>
        private let capacity: Int
        /// Parts claimed and parts copied, over all runs: run r's parts are r·parts ..< (r + 1)·parts.
        private let claimed = Atomic<Int>(0), copied = Atomic<Int>(0)
        /// Runs each piece has taken part in (written by that piece only).
        private let runs: UnsafeMutablePointer<Int>

        /// For the pieces of a product whose A is k×m.
        init(pieces: Int, k: Int, m: Int) {
            parts = pieces
            capacity = k * ZeroRowSkip.paddedWidth(m)
            buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity * 4, alignment: 64).bindMemory(to: Float.self, capacity: capacity)
            runs = .allocate(capacity: pieces)
            runs.initialize(repeating: 0, count: pieces)
        }

        deinit { buffer.deallocate(); runs.deallocate() }

        /// A' for piece `piece` of the product (its `MatrixCall.pieces` number), copied with the others'.
        func copy(piece: Int, _ a: UnsafePointer<Float>, lda: Int, k: Int, live: UnsafePointer<Int32>, count: Int,
                  columns: Int, width: Int) -> UnsafeMutablePointer<Float> {
            precondition(k * width <= capacity, "internal error: A' larger than its buffer")
            let first = runs[piece] * parts, end = first + parts
            runs[piece] += 1
            while true {
                let part = claimed.load(ordering: .relaxed)
                if part >= end { break }
                guard claimed.compareExchange(expected: part, desired: part + 1, ordering: .relaxed).exchanged else { continue }
                precondition(part >= first, "internal error: a piece of a product ran twice in one run")
                let p = part - first
                ZeroRowSkip.copy(a, lda: lda, rows: k * p / parts ..< k * (p + 1) / parts, live: live, count: count, columns: columns,
                                 into: buffer, width: width)
                copied.wrappingAdd(1, ordering: .releasing)
            }
            GEMM.spinUntil(copied, reaches: end)
            return buffer
        }
    }

    /// Floats per row of A': the count rounded up to 16, plus 16 when that is a multiple of 64 (the GEMM
    /// packs operands whose rows are a multiple of 256 bytes apart instead of reading them in place).
    static func paddedWidth(_ count: Int) -> Int {
        let width = (count + 15) / 16 * 16
        return width % 64 == 0 ? width + 16 : width
    }

    /// Writes the indices of the columns of A (k×m, lda) that hold a value other than ±0, in order, and
    /// returns their count and whether every value of A is finite. One pass: each column's largest
    /// magnitude bits over the rows, 16 columns a vector (the bits order like the magnitudes, with NaN
    /// above ∞): not 0 for a live column, below the all-ones exponent for a finite one.
    static func liveColumns(_ a: UnsafePointer<Float>, lda: Int, k: Int, m: Int,
                            into live: UnsafeMutablePointer<Int32>) -> (count: Int, finite: Bool) {
        typealias U = SIMD16<UInt32>
        let vectors = m / 16
        let magnitude = U(repeating: 0x7FFF_FFFF)
        return withUnsafeTemporaryAllocation(of: U.self, capacity: vectors + 1) { buffer in
            let largest = buffer.baseAddress!
            largest.initialize(repeating: U(), count: vectors + 1)
            for p in 0..<k {
                let row = UnsafeRawPointer(a + p * lda)
                for v in 0..<vectors {
                    largest[v] = pointwiseMax(largest[v], row.loadUnaligned(fromByteOffset: 64 * v, as: U.self) & magnitude)
                }
            }
            for t in 0..<(m - vectors * 16) {
                for p in 0..<k { largest[vectors][t] = max(largest[vectors][t], a[p * lda + vectors * 16 + t].bitPattern & 0x7FFF_FFFF) }
            }
            var count = 0, finite = true
            for i in 0..<m {
                let bits = largest[i / 16][i % 16]
                if bits != 0 { live[count] = Int32(i); count += 1 }
                if bits >= 0x7F80_0000 { finite = false }
            }
            return (count, finite)
        }
    }

    /// Whether the k×n block of B (ldb) holds only finite values: no magnitude reaches the all-ones exponent.
    static func allFinite(_ b: UnsafePointer<Float>, ldb: Int, rows: Int, columns: Int) -> Bool {
        typealias U = SIMD16<UInt32>
        let magnitude = U(repeating: 0x7FFF_FFFF)
        var largest = U(), largestScalar: UInt32 = 0
        for p in 0..<rows {
            let row = b + p * ldb
            var j = 0
            while j + 16 <= columns {
                largest = pointwiseMax(largest, UnsafeRawPointer(row + j).loadUnaligned(as: U.self) & magnitude)
                j += 16
            }
            while j < columns { largestScalar = max(largestScalar, row[j].bitPattern & 0x7FFF_FFFF); j += 1 }
        }
        return max(largest.max(), largestScalar) < 0x7F80_0000
    }

    /// Whether the n floats at p are all +0 (bit pattern 0).
    static func allPositiveZero(_ p: UnsafePointer<Float>, _ n: Int) -> Bool {
        typealias U = SIMD16<UInt32>
        var any = U(), tail: UInt32 = 0
        var j = 0
        while j + 16 <= n { any |= UnsafeRawPointer(p + j).loadUnaligned(as: U.self); j += 16 }
        while j < n { tail |= p[j].bitPattern; j += 1 }
        return any == U() && tail == 0
    }

    /// The scratch of one running skip: the row order and A'. Grown on demand, reused through `pool`
    /// (the pieces of a product running at the same time each take their own).
    final class Buffers: @unchecked Sendable {
        private(set) var rows = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        private(set) var compactA = UnsafeMutablePointer<Float>.allocate(capacity: 1)
        private var capacities = (rows: 1, a: 1)

        deinit { rows.deallocate(); compactA.deallocate() }

        func reserve(rows count: Int, compactA a: Int) {
            if count > capacities.rows { rows.deallocate(); rows = .allocate(capacity: count); capacities.rows = count }
            if a > capacities.a {
                compactA.deallocate()
                compactA = UnsafeMutableRawPointer.allocate(byteCount: a * 4, alignment: 64).bindMemory(to: Float.self, capacity: a)
                capacities.a = a
            }
        }
    }

    static let pool = Mutex<[Buffers]>([])

    static func withBuffers<R>(_ body: (Buffers) -> R) -> R {
        let buffers = pool.withLock { $0.popLast() } ?? Buffers()
        defer { pool.withLock { $0.append(buffers) } }
        return body(buffers)
    }
}
