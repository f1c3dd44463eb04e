import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The zero scans of a product's A, shared by the column pieces of the product (`MatrixCall.pieces`).
///
/// A GEMM whose A is stored m×k and read in place scans each 8-row panel of A per k-block for the k steps
/// where its rows are non-zero (`GEMM.nonZeroSteps`, with the lists of its four pairs of rows). Column
/// pieces of one product read the same A, so each piece repeated every scan: x·W₁ᵀ of the mnist step (x:
/// 16 panels × 3 k-blocks of pixels when `GEMM.kcMax` was 384, 2 k-blocks since; pieces of 208 and 192
/// columns, one per thread) spent ~67 µs of CPU per step scanning, half of it twice. Here each (k-block,
/// panel) is scanned once per run, by whichever piece claims it first, into its pair masks
/// (`GEMM.pairMasks`: 8 bytes per 16 steps), and every piece makes its lists from those
/// (`GEMM.appendSteps`: 7 of the 22 µs that scanning all 48 panels of x takes when it is in cache,
/// measured alone). Sharing the lists themselves (~2 KB a panel, against
/// 136 bytes of masks) gained little: reading another core's lists cost nearly as much as scanning
/// (x·W₁ᵀ's pieces below, meeting in the middle: 196 → 189 and 174 → 176 µs).
///
/// Who scans: the narrowest piece, which would finish first, scans ahead, at the start of each k-block,
/// every panel no other piece has claimed yet; the others claim a panel when they reach it unclaimed, or
/// wait for its masks if it is being scanned (a fraction of a microsecond). Pieces of equal width walk
/// the panels from opposite ends (`Run.descending`), so that they meet in the middle. The pieces of
/// x·W₁ᵀ (208 and 192 columns), each way in turn in one process (medians of 130 runs, two quiet runs):
/// not sharing 198/203 and 180/185 µs; meeting in the middle 188/194 and 175/183 µs (each scanning about
/// half); the narrow piece scanning ahead 182/186 and 182/185 µs (it scans 46 of the 48 panels). The
/// stage's minimum went 208 → 199 µs (medians of 17–19 quiet 400-step runs each, interleaved): less than
/// the pieces gained, since the stage now waits for the later of two pieces of equal length.
///
/// The lists made from the masks are the ones `nonZeroSteps` makes (same k-blocking, same steps, same
/// give-up test on the same counts; the pair lists are made whether the piece uses them or not), so
/// every decision and every value is unchanged.
///
/// Runs: each piece numbers its own runs (`begin`), and an entry is tagged with the run that scanned it,
/// so nothing is cleared between runs. As with `ColumnBalance`, each run of the product must run every
/// piece once (one after another or at the same time) before any piece runs again, and A must not change
/// during a run. A piece never reads an entry tagged with a later run than its own (a piece run more often
/// than the others, which breaks that contract): it then scans on its own.
final class SharedPanelScans: @unchecked Sendable {
    let kBlocks: Int, panels: Int, kc: Int
    /// Words per entry: the `pairMasks` of each 16 steps of the longest k-block, then those of its last
    /// steps (4 bits a step), rounded up to whole 64-byte lines.
    private let entryStride: Int
    private let masks: UnsafeMutablePointer<Int>
    /// Per entry (k-block × panels + panel): run << 2 | 1 while claimed and being scanned, run << 2 | 2
    /// once its masks are written, run << 2 | 3 when the scan gave up (a dense panel); 0 before any run.
    private let states: UnsafeMutablePointer<Atomic<Int>>
    /// The latest run of each piece, and whether it scans ahead; each written by that piece only.
    private let runs: UnsafeMutablePointer<Int>
    private let scansAhead: [Bool]

    /// For a product whose GEMM plan has `kBlocks` k-blocks of at most `kc` steps and `panels` 8-row
    /// panels, cut into pieces of `widths` columns.
    init(kBlocks: Int, panels: Int, kc: Int, widths: [Int]) {
        (self.kBlocks, self.panels, self.kc) = (kBlocks, panels, kc)
        entryStride = GEMM.roundUp(kc / 16 + 1, 8)
        let entries = kBlocks * panels
        masks = UnsafeMutableRawPointer.allocate(byteCount: entries * entryStride * 8, alignment: 64)
            .bindMemory(to: Int.self, capacity: entries * entryStride)
        states = .allocate(capacity: entries)
        for e in 0..<entries { (states + e).initialize(to: Atomic(0)) }
        runs = .allocate(capacity: widths.count)
        runs.initialize(repeating: 0, count: widths.count)
        let narrowest = widths.indices.min { widths[$0] < widths[$1] }!
        scansAhead = widths.indices.map { $0 == narrowest && widths[$0] < widths.max()! }
    }

    deinit {
        masks.deallocate()
        states.deinitialize(count: kBlocks * panels)
        states.deallocate()
        runs.deallocate()
    }

    /// One piece's view of one run.
    struct Run {
        let scans: SharedPanelScans
        let run: Int
        /// Scan every unclaimed panel of a k-block before computing it (`scanAhead`).
        let scansAhead: Bool
        /// Walk the panels of each k-block from the last one down (odd pieces, when no piece scans ahead).
        let descending: Bool
    }

    /// Starts the next run of piece `p`.
    func begin(piece p: Int) -> Run {
        runs[p] += 1
        return Run(scans: self, run: runs[p], scansAhead: scansAhead[p], descending: !scansAhead.contains(true) && p % 2 == 1)
    }

    /// Scans panel `panel` (its 8 rows at `rows`, leading dimension `lda`) of k-block `block` (`kc` steps,
    /// giving up past `limit`, as `nonZeroSteps`) in run `run` if no piece has claimed it yet.
    func scanAhead(_ run: Run, block: Int, panel: Int, rows: UnsafePointer<Float>, lda: Int, kc: Int, limit: Int) {
        let e = block * panels + panel
        let state = states[e].load(ordering: .relaxed)
        if state >> 2 < run.run && states[e].compareExchange(expected: state, desired: run.run << 2 | 1, ordering: .relaxed).exchanged {
            _ = fill(e, rows: rows, lda: lda, kc: kc, limit: limit, run: run.run)
        }
    }

    /// What `GEMM.nonZeroSteps(rows, lda: lda, kc: kc, limit: limit, into: steps, pairs: pairs)` returns
    /// and writes, for panel `panel` of k-block `block` in run `run`: made from the masks of the piece
    /// that claimed it in this run (waiting for them if need be), or of a scan made now if none did. nil
    /// when a later run has the entry.
    func scan(_ run: Run, block: Int, panel: Int, rows: UnsafePointer<Float>, lda: Int, kc: Int, limit: Int,
              into steps: UnsafeMutablePointer<Int32>, pairs: UnsafeMutablePointer<GEMM.PairLists>) -> Int? {
        let e = block * panels + panel
        var state = states[e].load(ordering: .acquiring)
        while state >> 2 != run.run || state & 3 == 1 {
            if state >> 2 > run.run { return nil }
            if state >> 2 == run.run {
                // Claimed in this run by a piece that is scanning it right now.
                var spins = 0
                repeat {
                    spins += 1
                    if spins & 4095 == 0 { sched_yield() }
                    state = states[e].load(ordering: .acquiring)
                } while state & 3 == 1
                break
            }
            let (exchanged, original) = states[e].compareExchange(expected: state, desired: run.run << 2 | 1, ordering: .relaxed)
            state = exchanged ? fill(e, rows: rows, lda: lda, kc: kc, limit: limit, run: run.run) : original
        }
        if state & 3 == 3 { return limit + 1 }
        // The lists, as `nonZeroSteps` makes them from the same masks.
        let words = masks + e * entryStride, positions = GEMM.setBitPositions
        var count = 0, p = 0
        while p + 16 <= kc {
            count = GEMM.appendSteps(pairMasks: words[p / 16], at: p, into: steps, count: count, pairs: pairs, positions)
            p += 16
        }
        let tail = words[p / 16]
        for q in p..<kc {
            let nibble = Int32(truncatingIfNeeded: tail >> (4 * (q - p)) & 15)
            count = GEMM.appendStep(q, pairBits: SIMD4(repeating: nibble) &>> SIMD4(0, 1, 2, 3) & 1, into: steps, count: count, pairs: pairs)
        }
        return count
    }

    /// Scans entry `e` (claimed by the caller for `run`) into its masks; returns its new state.
    private func fill(_ e: Int, rows: UnsafePointer<Float>, lda: Int, kc: Int, limit: Int, run: Int) -> Int {
        let words = masks + e * entryStride
        var count = 0, p = 0, state = run << 2 | 2
        while p + 16 <= kc {
            let word = GEMM.pairMasks(rows, lda: lda, at: p)
            words[p / 16] = word
            count &+= GEMM.unionMask(word).nonzeroBitCount
            p += 16
            if GEMM.scanGivesUp(count: count, scanned: p, limit: limit) {
                state = run << 2 | 3
                break
            }
        }
        if state & 3 == 2 {
            // The last steps (fewer than 16), 4 bits each: pair g at bit 4·(q − p) + g.
            var tail = 0
            for q in p..<kc {
                let bits = GEMM.pairBits(rows, lda: lda, at: q) &<< SIMD4(0, 1, 2, 3)
                tail |= Int(bits.wrappedSum()) << (4 * (q - p))
            }
            words[p / 16] = tail
        }
        states[e].store(state, ordering: .releasing)
        return state
    }

    /// The run that last claimed the entry of `panel` in k-block `block` (0: never), for tests.
    func claimingRun(block: Int, panel: Int) -> Int {
        states[block * panels + panel].load(ordering: .acquiring) >> 2
    }
}
