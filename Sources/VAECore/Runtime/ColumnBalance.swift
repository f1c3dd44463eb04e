import Synchronization

/// Where the pieces of a transposed product cut its columns, chosen from the data of the run before.
///
/// A transposed product (`MatrixCall.transposedProduct`: a weight gradient Σ dy⊗x whose x is a data
/// input) skips the examples in which all 8 pixels of a column panel are 0, so a panel costs about the
/// number of examples in which any of its pixels is not, and images are denser in the centre. The GEMM
/// counts each panel's k steps as it computes it (`GEMM.multiply`'s `stepCounts`); the last piece to
/// finish a run cuts the next run where those costs are split evenly. Batches of one data set are
/// alike, so the previous batch's cut fits the next one (mnist: 400 or 408 of 784 pixels). The pieces
/// of the mnist step's Σ dy⊗x on two threads, cut into equal halves: 190 and 204 µs; balanced: 192 and
/// 191 µs; the stage 207 → 202 µs (medians over 8 runs of the fastest of 600 steps).
/// The cut changes no value: every C element is computed with the same operations in whichever piece
/// it falls. The counts depend only on the data, so the cuts do too (not on timing or threads).
///
/// Each run of the call must run every piece once, one after the other or at the same time (as the
/// tasks of a stage do): a piece reads the cut when it starts, and it changes after the last one ends.
final class ColumnBalance: @unchecked Sendable {
    let parts: Int
    let columns: Int
    var panels: Int { (columns + 7) / 8 }
    /// k steps run by each 8-column panel in the latest run (each piece writes its own panels).
    let steps: UnsafeMutablePointer<Int32>
    /// parts + 1 column boundaries: piece p computes cuts[p]..<cuts[p + 1]. Rewritten by the last piece
    /// of a run, read by the pieces of the next.
    private let cuts: UnsafeMutablePointer<Int>
    /// The columns of each piece's current (or latest) run, written only by that piece.
    private let current: UnsafeMutablePointer<Range<Int>>
    private let finished = Atomic<Int>(0)

    /// A fixed cost per panel, in k steps, added to its count: scanning its steps and storing its tiles
    /// transposed. Chosen on the mnist step's Σ dy⊗x: with 5, 20 and 40 the stage took 210, 202 and
    /// 205 µs (as above); alone on one thread, of the cuts 376…432 the one 20 picks was the fastest
    /// (or within 1 µs of it) for each of 8 batches.
    static let costPerPanel = 20

    init(parts: Int, columns: Int) {
        precondition(parts >= 1 && columns >= 8 * parts, "internal error: too few columns to balance")
        self.parts = parts
        self.columns = columns
        steps = .allocate(capacity: (columns + 7) / 8)
        steps.initialize(repeating: 0, count: (columns + 7) / 8)
        cuts = .allocate(capacity: parts + 1)
        cuts.initialize(repeating: 0, count: parts + 1)
        current = .allocate(capacity: parts)
        current.initialize(repeating: 0..<0, count: parts)
        cut()   // no counts yet: equal pieces
        for p in 0..<parts { current[p] = cuts[p]..<cuts[p + 1] }
    }

    deinit {
        steps.deallocate()
        cuts.deallocate()
        current.deallocate()
    }

    /// The columns piece `p` computes in the run it starts.
    func begin(piece p: Int) -> Range<Int> {
        current[p] = cuts[p]..<cuts[p + 1]
        return current[p]
    }

    /// The columns of piece `p`'s current or latest run.
    func columns(of p: Int) -> Range<Int> { current[p] }

    /// Called by each piece when it has computed its columns (and written their counts): the last one
    /// of the run chooses the next run's cut.
    func end() {
        guard finished.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue == parts else { return }
        finished.store(0, ordering: .relaxed)
        cut()
    }

    /// Sets `cuts` from `steps`: boundary p at the panel boundary whose cumulative cost is nearest to
    /// p/parts of the total, each piece keeping at least one panel.
    private func cut() {
        let cost = { (q: Int) in Int(self.steps[q]) + Self.costPerPanel }
        var total = 0
        for q in 0..<panels { total += cost(q) }
        cuts[0] = 0
        var q = 0, sum = 0   // sum: cost of panels 0..<q
        for p in 1..<parts {
            let target = total * p / parts
            let first = Int(cuts[p - 1] / 8) + 1, last = panels - (parts - p)
            while q < first { sum += cost(q); q += 1 }
            while q < last && sum + cost(q) <= target { sum += cost(q); q += 1 }
            // q is the last boundary at or below the target (or first); the next one may be nearer.
            if q < last && target - sum > sum + cost(q) - target { sum += cost(q); q += 1 }
            cuts[p] = q * 8
        }
        cuts[parts] = columns
    }

    /// The column boundaries of the next run (tests).
    var nextCuts: [Int] { (0...parts).map { cuts[$0] } }
}
