// Single-precision GEMM for the runtime, BLIS/GotoBLAS style.
//
//   C[m×n] = alpha · op(A) · op(B) + beta · C        (all matrices row-major)
//
// Layout (`Plan`). k is cut into balanced blocks of at most kcMax. Per k-block, op(A) is used as
// panels of 8 rows (the broadcast operand) and op(B) as panels of 32 columns (the vector operand,
// two SIMD16<Float>), plus narrow panels of 16 / 8 columns at the right edge (all panels narrow
// when n ≤ 64 and A is read in place, see `narrowOnly`).
//
// Packing (GEMMPacking.swift). Panels are copied into contiguous buffers, reading A and B through
// whichever transpose is asked for (with in-register 16×16 / 8×16 transposes), so no transposed
// copy is ever materialised and the kernels see one layout for all four transpose combinations.
// Operands whose storage already has that layout are read in place instead (`Job.directA/B`).
//
// Compute. C is cut into chunks (`Plan.chunking`): along n (each chunk owns ≤ 128 columns of B,
// so its B block stays in L2; A is shared) or, when n is too narrow to feed the threads, along m.
// The shared operand is packed once per call, the chunk's own one k-block by k-block just before
// use. Per k-block: for each 8-row A panel (kept in L1), for each B panel, one register-blocked
// micro-kernel call (GEMMKernel.swift): 8×32 in 16 SIMD16 accumulators, or 8/16/24 × 16/8 for
// the narrow panels. Edge tiles (m or n not a multiple of the tile) are computed into a scratch
// tile and copied.
//
// Sparse A. A read in place (A stored m×k through row pointers; Aᵀ stored k×m with transposeC) is
// scanned per 8-row panel and k-block for the k steps where any of its 8 rows is not ±0 (`nonZeroSteps`,
// which gives up early on dense panels); if few enough and B is finite in the block, the panel's tiles
// run over that list only. For A stored m×k with contiguous B rows (B in place, or the chunk's B
// packed row-major: `Job.bRowMajor`), the same scan also lists each pair of rows' steps, and when
// those are cheaper (pair row-steps × 1.4 < the panel's), four 2-row × ≤13-vector pair tiles
// (GEMMPairTiles.swift) replace the panel's 32-wide tiles. x·W₁ᵀ of the mnist step (pixels 81% zeros;
// 47% of 8-row steps, 29% of 2-row steps non-zero): stage minima ~450 → ~385 µs (4 interleaved pairs
// on a loaded machine, about −17%). Not for Aᵀ (Σdh⊗x): there pair tiles were 17% slower. For Aᵀ read
// in place with C stored transposed and B in place (Σdh⊗x), the same scan lists each half (4 rows) of
// the panel, and when cheaper (quad row-steps × 1.1 < the panel's), two 4-row × ≤6-vector quad tiles
// (GEMMQuadTiles.swift) over all whole 32-wide panels and a whole 16-wide tail replace the panel's tiles,
// storing their 4 floats per column of op(C) straight into C. mnist Σdh⊗x (4-pixel union density 0.28
// against 0.39 for 8): stage minima on one thread ~430 → ~374 µs (5 interleaved pairs). stepCounts still
// counts the union's steps for such panels. Skipped steps add ±0, so values are the dense product's (up
// to the sign of a zero); the choice depends on A. A stored m×k whose first panel looks dense
// (`Job.aLooksDense`) is not scanned at all; the column pieces of one product (`MatrixCall.pieces`) scan
// each panel once between them (SharedPanelScans.swift).
//
// Row map. With C stored transposed, op(C)'s column j may go to C's row cRows[j] instead of row j
// (`TransposedC`): ZeroRowSkip.swift computes only the rows of live units that way, straight into C.
//
// Threads (when `threads > 1` and the call has at least `parallelFlopThreshold` flops): split the
// OUTPUT only. DispatchQueue.concurrentPerform runs one iteration per thread; the iterations take
// packing pieces of the shared operand and then chunks of C from atomic counters (dynamic load
// balancing: a worker that wakes up late just takes fewer chunks). k is NEVER split across threads.
//
// Determinism. Every element C[i, j] is produced by the same sequence of floating-point operations
// whatever the thread count, the chunking, and the tile (full, edge, wide or narrow) it falls in:
//   * the k-blocking depends only on k (never on threads, m or n);
//   * inside a k-block the accumulator starts at 0 and takes one fused multiply-add per p, in order
//     (packed or in-place operands give the same values);
//   * after a k-block: C = alpha·acc + beta·C for the first block (just alpha·acc when beta == 0,
//     and then C is never read), and C = C + alpha·acc for the later blocks, in block order;
//   * edge tiles go through the same kernels into a scratch tile and then the same formula.
// Threads only decide who computes which chunk. So results are bit-identical between threads = 1
// and threads = 2 (tested), and from call to call.

import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// C[m×n] = alpha · op(A) · op(B) + beta · C, row-major. op(A) is A (m×k, leading dimension lda) or,
/// when transposeA, Aᵀ where A is stored k×m. Likewise B: k×n, or stored n×k when transposeB.
/// beta == 0 means C is overwritten (never read, so NaN garbage in C does not propagate).
/// transposeC: C is stored transposed, n×m (element (i, j) at c[j·ldc + i]); see `multiply`.
/// stepCounts (⌈m/8⌉ values): receives for each 8-row panel of op(A) the number of k steps its 32-wide
/// tiles ran, summed over the k-blocks: the non-zero steps when its zero steps were skipped, else all
/// (0 when n has no 32-wide panel); pair tiles count their equivalent in 8-row steps, quad tiles the
/// union's steps. A measure of the panel's cost, for balancing pieces of a call.
public enum GEMM {
    // MARK: Tuning (measured on Zen 4 with AVX-512, 2 cores; see GEMMTests for the invariants)

    /// Rows of an A panel (broadcast operand of the micro-kernels).
    static let mr = 8

    /// Largest k-block. The actual block is balanced: k is cut into ceil(k / kcMax) equal-ish parts,
    /// so an 8×kc A panel (12.5 KB at kc = 400) sits in L1 while B panels stream from L2. It was 384:
    /// a hidden width of 400 (the mnist model's h·W₄ᵀ, k = 400) then took two k-blocks of 200, each
    /// one more pass over C and one more packing boundary; in one block its stage minima went 373–375
    /// → 364 µs (4 interleaved runs), and the other products were unchanged (k = 784 now runs as 2
    /// blocks of 392 instead of 3 of 262: x·W₁ᵀ 184–192 either way, dy·W₄ ‖ Σdy⊗h 702–705 → 700–704).
    /// The blocking fixes the order of the additions, so the results moved by float rounding (mnist's
    /// 10-epoch test −ELBO 159.88 → 159.87); one and two threads still give the same bits.
    static let kcMax = 400
    /// Bytes of B one chunk's k-block may hold: its 32-column panels stay in L2 (1 MB per core on
    /// Zen 4) while the A panels pass through L1. A chunk scans its A panels' zero steps (sparse A)
    /// and checks its B panels for non-finite values once per k-block, so fewer, wider chunks also
    /// repeat those less: a 128-column limit cost 4 scans of every 8 pixels of a batch per step.
    /// 512 KB: at 256 KB with k-blocks of 392 (kcMax 400) each 192- or 208-column piece of x·W₁ᵀ
    /// (k = 784) was cut into two chunks, each running every row panel's tiles and finiteness checks
    /// again; as one chunk the stage minima went 188–192 → 176–178 µs (three interleaved runs), the
    /// other stages unchanged. 768 KB measured the same as 512.
    static let chunkBytes = 512 * 1024
    /// Chunks per thread when threaded (dynamic load balancing).
    static let chunksPerThread = 4
    /// Below this many flops (2·m·n·k) a call runs on one thread whatever `threads` says. A worker
    /// woken by concurrentPerform starts 10–20 µs after the call on this machine (measured), so a
    /// second thread pays from about 30 µs of single-thread work: measured with 2 threads, 2.0
    /// MFLOP shapes were 5–15% slower or 13% faster depending on shape, 4.2 MFLOP ones 15% faster,
    /// 6.5 MFLOP ones 20% faster.
    static let parallelFlopThreshold = 3_000_000

    // MARK: Entry point

    /// `sharedScans`: the zero scans of A are taken from (or given to) the other column pieces of the
    /// product this call is a piece of (`SharedPanelScans`); A must then be stored m×k.
    /// `bFinite`: the caller has found every value of B finite (true only if it has), so the checks of
    /// B that skipping A's zero steps needs are not made again.
    static func multiply(
        transposeA: Bool, transposeB: Bool,
        m: Int, n: Int, k: Int,
        alpha: Float,
        a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int,
        transposeC: Bool = false,
        cRows: UnsafePointer<Int32>? = nil,
        stepCounts: UnsafeMutablePointer<Int32>? = nil,
        sharedScans: SharedPanelScans.Run? = nil,
        bFinite: Bool = false,
        threads: Int
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "GEMM: negative dimension")
        precondition(ldc >= max(1, transposeC ? m : n), "GEMM: ldc too small")
        precondition(lda >= max(1, transposeA ? m : k), "GEMM: lda too small")
        precondition(ldb >= max(1, transposeB ? k : n), "GEMM: ldb too small")
        stepCounts?.update(repeating: 0, count: (m + 7) / 8)
        if m == 0 || n == 0 { return }
        if k == 0 || alpha == 0 {
            scaleC(m: transposeC ? n : m, n: transposeC ? m : n, beta: beta, c: c, ldc: ldc)
            return
        }
        let plan = Plan(m: m, n: n, k: k, narrowOnly: narrowOnly(n: n, transposeA: transposeA, lda: lda))
        let threads = threadsUsed(plan, threads: threads)
        let parallel = threads > 1

        withWorkspace { ws in
            var job = Job(
                transA: transposeA, transB: transposeB, alpha: alpha, beta: beta,
                a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, transC: transposeC, plan: plan)
            job.stepCounts = stepCounts
            precondition(cRows == nil || transposeC, "GEMM: a row map needs C stored transposed")
            job.cRows = cRows
            job.bKnownFinite = bFinite
            if let sharedScans {
                let scans = sharedScans.scans
                precondition(!transposeA && scans.kc == plan.kc && scans.kBlocks == plan.kBlocks && scans.panels == plan.mPanels,
                             "internal error: shared scans of another product")
                job.sharedScans = sharedScans
            }
            (job.splitN, job.gm, job.gn) = plan.chunking(threads: parallel ? threads : 1)
            ws.reserve(sharedCount: job.sharedSize, privateCount: job.privateSize)
            job.shared = ws.shared
            if job.chunkCount == 1 || !parallel {
                for piece in 0..<job.pieceCount { job.pack(piece: piece) }
                for chunk in 0..<job.chunkCount { job.compute(chunk: chunk, scratch: ws.scratch) }
                return
            }
            ws.nextPiece.store(0, ordering: .relaxed)
            ws.donePieces.store(0, ordering: .relaxed)
            ws.nextChunk.store(0, ordering: .relaxed)
            ws.doneChunks.store(0, ordering: .relaxed)
            let pieces = job.pieceCount, chunks = job.chunkCount
            let frozen = job
            // One iteration per thread; the work is handed out by our own counters. A thread
            // claims packing pieces, then chunks, until none are left, and then spins until every
            // claimed item is finished. Whatever is waited for has been claimed by a running
            // thread, so the waits end even if concurrentPerform runs the iterations one after
            // another. Spinning at the end (instead of letting concurrentPerform put the caller to
            // sleep until the last worker checks out) saves a wake-up (~20 µs measured here).
            DispatchQueue.concurrentPerform(iterations: threads) { _ in
                while true {
                    let piece = ws.nextPiece.wrappingAdd(1, ordering: .relaxed).oldValue
                    if piece >= pieces { break }
                    frozen.pack(piece: piece)
                    ws.donePieces.wrappingAdd(1, ordering: .releasing)
                }
                spinUntil(ws.donePieces, reaches: pieces)
                withWorkspace { own in
                    own.reserve(sharedCount: 0, privateCount: frozen.privateSize)
                    while true {
                        let chunk = ws.nextChunk.wrappingAdd(1, ordering: .relaxed).oldValue
                        if chunk >= chunks { break }
                        frozen.compute(chunk: chunk, scratch: own.scratch)
                        ws.doneChunks.wrappingAdd(1, ordering: .releasing)
                    }
                }
                spinUntil(ws.doneChunks, reaches: chunks)
            }
        }
    }

    /// Busy-waits until `counter` (incremented with release ordering) reaches `target`.
    @inline(__always)
    static func spinUntil(_ counter: borrowing Atomic<Int>, reaches target: Int) {
        var spins = 0
        while counter.load(ordering: .acquiring) < target {
            spins += 1
            if spins & 4095 == 0 { sched_yield() }
        }
    }

    /// How many threads a call uses: 1 below `parallelFlopThreshold` or when the output has only
    /// one chunk, else min(threads, chunks, online CPUs) (more would only spin).
    static func threadsUsed(m: Int, n: Int, k: Int, threads: Int, transposeA: Bool, lda: Int) -> Int {
        if m == 0 || n == 0 || k == 0 { return 1 }
        let narrow = narrowOnly(n: n, transposeA: transposeA, lda: lda)
        return threadsUsed(Plan(m: m, n: n, k: k, narrowOnly: narrow), threads: threads)
    }

    static func threadsUsed(_ plan: Plan, threads: Int) -> Int {
        if threads <= 1 { return 1 }
        if 2.0 * Double(plan.m) * Double(plan.n) * Double(plan.k) < Double(parallelFlopThreshold) { return 1 }
        let (_, gm, gn) = plan.chunking(threads: threads)
        return max(1, min(threads, gm * gn, onlineCPUs))
    }

    static let onlineCPUs: Int = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))

    /// Only 16/8-wide panels (no 32-wide ones) when n is small and A, stored m×k, can be read in
    /// place by the row-pointer kernels: packing (transposing) A would cost about as much as the
    /// product itself, since each A value is used by n ≤ 64 columns only.
    static func narrowOnly(n: Int, transposeA: Bool, lda: Int) -> Bool {
        n <= 64 && !transposeA && lda % 64 != 0
    }

    /// Straightforward triple loop, the oracle for tests.
    public static func reference(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
        c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m == 0 || n == 0 { return }
        if k == 0 || alpha == 0 {
            scaleC(m: m, n: n, beta: beta, c: c, ldc: ldc)
            return
        }
        for i in 0..<m {
            for j in 0..<n {
                var sum: Float = 0
                for p in 0..<k {
                    let av = transposeA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                    sum += av * bv
                }
                let old = c[i * ldc + j]
                c[i * ldc + j] = beta == 0 ? alpha * sum : alpha * sum + beta * old
            }
        }
    }

    // MARK: Layout

    /// C = beta · C (beta == 0 writes zeros without reading C).
    static func scaleC(m: Int, n: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if beta == 1 { return }
        for i in 0..<m {
            let row = c + i * ldc
            if beta == 0 {
                row.update(repeating: 0, count: n)
            } else {
                for j in 0..<n { row[j] = beta * row[j] }
            }
        }
    }

    @inline(__always)
    static func roundUp(_ x: Int, _ to: Int) -> Int { (x + to - 1) / to * to }

    /// The packed layout of one call; depends on m, n, k (and narrowOnly) only.
    struct Plan {
        let m: Int, n: Int, k: Int
        /// k-block length (balanced, ≤ kcMax) and count. Depends on k only.
        let kc: Int, kBlocks: Int
        /// 8-row A panels.
        let mPanels: Int
        /// B panels: `wide` of 32 columns, then `mid` of 16 columns, then `last8` (0 or 1) of 8.
        let wide: Int, mid: Int, last8: Int
        /// Floats per packed k-block of A / B (multiples of 16 floats, so blocks stay 64-byte aligned).
        let aBlockStride: Int, bBlockStride: Int

        init(m: Int, n: Int, k: Int, narrowOnly: Bool = false) {
            self.m = m; self.n = n; self.k = k
            let blocks = (k + kcMax - 1) / kcMax
            kc = (k + blocks - 1) / blocks
            kBlocks = (k + kc - 1) / kc
            mPanels = (m + 7) / 8
            // Columns past the last multiple of 32: more than 24 → one more (padded) 32-wide panel;
            // 17…24 → 16 + 8; 9…16 → 16; 1…8 → 8. (SIMD8 costs the same per lane as SIMD16 here.)
            // narrowOnly: 16-wide panels, the last one 8 wide if at most 8 columns are left.
            if narrowOnly {
                let r = n % 16
                wide = 0; mid = n / 16 + (r > 8 ? 1 : 0); last8 = r >= 1 && r <= 8 ? 1 : 0
            } else {
                let r = n % 32
                if r == 0 || r > 24 {
                    wide = (n + 31) / 32; mid = 0; last8 = 0
                } else {
                    wide = n / 32; mid = r > 8 ? 1 : 0; last8 = r <= 8 || r > 16 ? 1 : 0
                }
            }
            aBlockStride = roundUp(mPanels * 8 * kc, 16)
            bBlockStride = roundUp((wide * 32 + mid * 16 + last8 * 8) * kc, 16)
        }

        /// Chunks along n are ranges of "units": a unit is one 32-wide panel; the narrow tail
        /// panels belong to the last unit (or form the only unit when there is no wide panel).
        var nUnits: Int { max(wide, 1) }
        /// Chunks along m are ranges of 24-row units (3 A panels: one call of the 24-row kernels).
        var mUnits: Int { (mPanels + 2) / 3 }

        /// How C is cut into chunks: (split along n?, chunks along m, chunks along n).
        /// One thread: chunks of at most `chunkBytes` of B per k-block, and ≥ 4 panels (cache blocking only). Several:
        /// about `chunksPerThread` chunks per thread, along n when n has enough panels, else along m.
        /// Chunk sizes are kept equal where possible (the count is chosen so units divide evenly,
        /// e.g. 12 units → 6 chunks of 2 rather than 8 of 1 or 2), since with two threads one
        /// oversized chunk at the end costs more than a few extra chunks.
        func chunking(threads: Int) -> (Bool, Int, Int) {
            let chunkPanels = max(4, GEMM.chunkBytes / (kc * 32 * 4))
            let minGn = (nUnits + chunkPanels - 1) / chunkPanels
            if threads <= 1 { return (true, 1, minGn) }
            let target = threads * chunksPerThread
            if nUnits >= 2 * threads || nUnits >= mUnits {
                let per = min(chunkPanels, (nUnits + target - 1) / target)
                return (true, 1, (nUnits + per - 1) / per)
            }
            let per = (mUnits + target - 1) / target
            return (false, (mUnits + per - 1) / per, 1)
        }

        var aSize: Int { kBlocks * aBlockStride }
        var bSize: Int { kBlocks * bBlockStride }
        /// Length of k-block `bi`.
        @inline(__always) func kLength(_ bi: Int) -> Int { min(kc, k - bi * kc) }
    }

    // MARK: Job

    /// One multiply: operands, plan, chunking. A value shared read-only by the threads.
    ///
    /// C is cut into chunks along n (`splitN`: each chunk owns a range of B panels, A is shared)
    /// or, when n is too narrow to give every thread work, along m (A rows private, B shared).
    /// The shared operand is packed once for all k-blocks (in pieces, by whichever threads come);
    /// a chunk packs its private operand one k-block at a time into its own scratch buffer, right
    /// before using it, so that block is still in L2.
    ///
    /// Operands whose layout already matches what a kernel reads are not packed at all ("direct"):
    /// Aᵀ stored k×m (8 consecutive rows of op(A) are 8 consecutive floats of a stored row), B
    /// stored k×n, and A stored m×k (row-pointer kernels, 8 rows at a time). Only their
    /// partial edge panel (fewer than 8 rows / than the panel's width) is packed, since reading it
    /// in place would run past the matrix. Leading dimensions that are multiples of 64 floats are
    /// packed anyway: their rows would collide in a few cache sets.
    struct Job {
        let transA: Bool, transB: Bool
        let alpha: Float, beta: Float
        let a: UnsafePointer<Float>, lda: Int
        let b: UnsafePointer<Float>, ldb: Int
        let c: UnsafeMutablePointer<Float>, ldc: Int
        /// C stored transposed: every tile goes through the edge scratch and `storeTransposed`.
        let transC: Bool
        /// With transC: the row of C each column of op(C) is stored in (nil: row j for column j).
        var cRows: UnsafePointer<Int32>? = nil
        var transposedC: TransposedC { TransposedC(c: c, ldc: ldc, rows: cRows) }
        let plan: Plan
        let directA: Bool, directB: Bool
        /// Packed shared operand (A when splitN, else B), all k-blocks.
        var shared: UnsafeMutablePointer<Float>? = nil
        /// Where to add, for each 8-row panel of A, the k steps its 32-wide tiles ran (`multiply`'s
        /// `stepCounts`).
        var stepCounts: UnsafeMutablePointer<Int32>? = nil
        /// The zero scans of A shared with the other column pieces of the product (`SharedPanelScans`).
        var sharedScans: SharedPanelScans.Run? = nil
        /// The caller found every value of B finite (`multiply`'s `bFinite`): the sparse paths, which may
        /// skip a k step only where B is finite, take that instead of checking the panels again.
        var bKnownFinite = false

        var splitN = true
        var gm = 1, gn = 1
        var chunkCount: Int { gm * gn }

        /// A chunk's private B (when C is cut along n) is packed row-major, [kc][chunk columns], instead of
        /// as panels, when A is stored m×k and read in place: the pair tiles of a sparse A read up to 13
        /// vectors of a B row at constant offsets (with one pointer per 32-column panel the compiler
        /// spilled 38 registers in the loop). The other kernels read it with that row stride.
        /// Only when A looks sparse (`aLooksSparse`): the 8×32 tiles of a dense A read B packed as panels
        /// a little faster (h·W₄ᵀ of the mnist step: stage minima 388 µs with row-major B against 383 as
        /// panels, 4 interleaved pairs).
        var bRowMajor: Bool { splitN && directA && !transA && !directB && aLooksSparse }
        /// Whether A stored m×k and read in place has, in the first 64 k steps of its first 8-row panel,
        /// more than 1/16 of steps where all 8 rows are ±0: the test `nonZeroSteps` gives up on dense
        /// panels with. Decided from the values, so the same for any thread count; the packing layout
        /// never changes a result.
        var aLooksSparse: Bool { aProbed && !aLooksDense }
        /// Whether that probe ran (A stored m×k, read in place, m ≥ 8, k ≥ 64) and found A dense. Then no
        /// panel of A is scanned (`Tiles.wide`): activations and gradients are dense in every panel, and
        /// their scans, each giving up after 64 steps, still cost h·W₄ᵀ of the mnist step ~13 µs of CPU
        /// per step (measured). Without them, stage minima (medians of 17–19 quiet runs, interleaved):
        /// h·W₄ᵀ 382 → 376 µs, dy·W₄ beside Σdy⊗h 740 → 731 µs. Values are unchanged: a panel computed
        /// densely has the values of its sparse computation (see `nonZeroSteps`).
        let aLooksDense: Bool
        private let aProbed: Bool

        /// Whether the whole 8-row panels of Aᵀ read in place (C stored transposed) may run as quad tiles
        /// (GEMMQuadTiles.swift): they read B in place, as one run of columns.
        var quadTilesUsable: Bool { transA && transC && directA && directB }

        var nUnits: Int { plan.nUnits }
        var bPanels: Int { plan.wide + plan.mid + plan.last8 }

        // Packing pieces of the shared operand, per k-block: 4 A panels or 2 B panels.
        static let aPanelsPerPiece = 4
        static let bPanelsPerPiece = 2
        var piecesPerBlock: Int {
            if splitN {
                if directA { return plan.m % 8 == 0 ? 0 : 1 }
                return (plan.mPanels + Job.aPanelsPerPiece - 1) / Job.aPanelsPerPiece
            }
            if directB { return partialBPanel < 0 ? 0 : 1 }
            return (bPanels + Job.bPanelsPerPiece - 1) / Job.bPanelsPerPiece
        }
        var pieceCount: Int { plan.kBlocks * piecesPerBlock }

        init(transA: Bool, transB: Bool, alpha: Float, beta: Float,
             a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
             c: UnsafeMutablePointer<Float>, ldc: Int, transC: Bool, plan: Plan) {
            self.transA = transA; self.transB = transB; self.alpha = alpha; self.beta = beta
            self.a = a; self.lda = lda; self.b = b; self.ldb = ldb; self.c = c; self.ldc = ldc
            self.transC = transC
            self.plan = plan
            // Aᵀ stored k×m is read in place by every kernel; A stored m×k by the row-pointer
            // kernels (8 rows at a time).
            directA = Job.readsAInPlace(lda: lda)
            directB = !transB && ldb % 64 != 0
            aProbed = directA && !transA && plan.m >= 8 && plan.k >= 64
            aLooksDense = aProbed && withUnsafeTemporaryAllocation(of: Int32.self, capacity: 64) { steps in
                GEMM.nonZeroSteps(a, lda: lda, kc: 64, limit: 60, into: steps.baseAddress!) > 60
            }
        }

        /// Whether A (stored either way) with leading dimension `lda` is read in place rather than packed.
        static func readsAInPlace(lda: Int) -> Bool { lda % 64 != 0 }

        var sharedSize: Int { splitN ? plan.kBlocks * plan.aBlockStride : plan.kBlocks * plan.bBlockStride }

        /// Floats of private packing buffer one chunk needs for one k-block (upper bound).
        var privateSize: Int {
            if splitN {
                let units = (nUnits + gn - 1) / gn
                return (min(units, plan.wide) * 32 + plan.mid * 16 + plan.last8 * 8) * plan.kc
            } else {
                let units = (plan.mUnits + gm - 1) / gm
                return units * 24 * plan.kc
            }
        }

        /// The B panel with fewer valid columns than its width, or -1.
        var partialBPanel: Int {
            let last = bPanels - 1
            let (j0, width) = bPanel(last)
            return j0 + width > plan.n ? last : -1
        }

        /// Packs piece `piece` of the shared operand.
        func pack(piece: Int) {
            let bi = piece / piecesPerBlock, q = piece % piecesPerBlock
            let p0 = bi * plan.kc, kcur = plan.kLength(bi)
            let shared = self.shared!
            if splitN {
                let panel0 = directA ? plan.mPanels - 1 : q * Job.aPanelsPerPiece
                let panel1 = directA ? plan.mPanels : panel0 + Job.aPanelsPerPiece
                packARows(panel0 * 8, min(plan.m, panel1 * 8), p0: p0, kc: kcur,
                          dst: shared + bi * plan.aBlockStride, origin: 0, capacity: plan.aBlockStride)
            } else {
                let first = directB ? partialBPanel : q * Job.bPanelsPerPiece
                let last = directB ? first + 1 : min(bPanels, first + Job.bPanelsPerPiece)
                packBPanels(first..<last, p0: p0, kc: kcur, dst: shared + bi * plan.bBlockStride, origin: 0,
                            capacity: plan.bBlockStride)
            }
        }

        /// Packs the A rows i0..<i1 (i0 a multiple of 8) of the k-block starting at p0; the panel
        /// holding row i goes to dst + (i - origin)·kc. With directA only a partial panel is packed.
        func packARows(_ i0: Int, _ i1: Int, p0: Int, kc: Int, dst: UnsafeMutablePointer<Float>,
                       origin: Int, capacity: Int) {
            assert(i0 >= origin && (roundUp(i1, 8) - origin) * kc <= capacity, "GEMM: A packing overflow")
            var start = i0
            if directA {
                start = max(i0, i1 / 8 * 8)
                if start >= i1 || i1 % 8 == 0 { return }
            }
            GEMM.packA(trans: transA, a: a, lda: lda, i0: start, mc: i1 - start, p0: p0, kc: kc,
                       dst: dst + (start - origin) * kc)
        }

        /// Packs B panels `panels` of the k-block starting at p0; the panel starting at column j
        /// goes to dst + (j - origin)·kc. With directB only a partial panel is packed.
        /// With `rowStride` > 0 the panels are packed row-major instead: column j at dst + (j - origin),
        /// k step p at p·rowStride.
        func packBPanels(_ panels: Range<Int>, p0: Int, kc: Int, dst: UnsafeMutablePointer<Float>,
                         origin: Int, capacity: Int, rowStride: Int = 0) {
            for panel in panels {
                let (j0, width) = bPanel(panel)
                assert(j0 >= origin && (j0 + width - origin) * kc <= capacity, "GEMM: B packing overflow")
                let cols = min(width, plan.n - j0)
                if directB && cols == width { continue }
                GEMM.packBPanel(trans: transB, b: b, ldb: ldb, p0: p0, kc: kc, j0: j0, cols: cols, width: width,
                                dst: rowStride > 0 ? dst + (j0 - origin) : dst + (j0 - origin) * kc,
                                stride: rowStride > 0 ? rowStride : width)
            }
        }

        /// First column and width of B panel `q`.
        @inline(__always)
        func bPanel(_ q: Int) -> (Int, Int) {
            if q < plan.wide { return (q * 32, 32) }
            if q < plan.wide + plan.mid { return (plan.wide * 32 + (q - plan.wide) * 16, 16) }
            return (plan.wide * 32 + plan.mid * 16, 8)
        }

        /// Computes chunk `chunk` of C; `scratch` is this thread's private packing buffer
        /// (≥ privateSize floats).
        func compute(chunk: Int, scratch: UnsafeMutablePointer<Float>) {
            // Chunks are handed out from the right edge of C: the chunk holding the narrow tail
            // panels (and the partial ones) is the heaviest, so it should not come last.
            let cm = chunk / gn, cn = gn - 1 - chunk % gn
            let u0 = cn * nUnits / gn, u1 = (cn + 1) * nUnits / gn
            let row0 = cm * plan.mUnits / gm * 24
            let row1 = min(plan.m, (cm + 1) * plan.mUnits / gm * 24)
            let wide0 = min(u0, plan.wide), wide1 = min(u1, plan.wide)
            let hasTail = u1 == nUnits && plan.mid + plan.last8 > 0
            let panelEnd = hasTail ? bPanels : wide1
            let col0 = wide0 * 32
            let shared = self.shared!
            let edgeCount = 24 * 32
            let bRowStride = bRowMajor ? bPanel(panelEnd - 1).0 + bPanel(panelEnd - 1).1 - col0 : 0
            withUnsafeTemporaryAllocation(of: Float.self, capacity: edgeCount + 5 * kcMax) { buffer in
                let edge = buffer.baseAddress!
                // The k indices of an A panel's non-zero columns (Tiles.wide), as Int32 bit patterns, then
                // those of its four pairs of rows.
                let steps = UnsafeMutableRawPointer(edge + edgeCount).bindMemory(to: Int32.self, capacity: 5 * kcMax)
                for bi in 0..<plan.kBlocks {
                    let kcur = plan.kLength(bi), p0 = bi * plan.kc
                    let aBlock: UnsafePointer<Float>, aOrigin: Int
                    let bBlock: UnsafePointer<Float>, bOrigin: Int
                    if splitN {
                        aBlock = UnsafePointer(shared + bi * plan.aBlockStride); aOrigin = 0
                        packBPanels(wide0..<panelEnd, p0: p0, kc: kcur, dst: scratch, origin: col0,
                                    capacity: privateSize, rowStride: bRowStride)
                        bBlock = UnsafePointer(scratch); bOrigin = col0
                    } else {
                        packARows(row0, row1, p0: p0, kc: kcur, dst: scratch, origin: row0,
                                  capacity: privateSize)
                        aBlock = UnsafePointer(scratch); aOrigin = row0
                        bBlock = UnsafePointer(shared + bi * plan.bBlockStride); bOrigin = 0
                    }
                    let tiles = Tiles(job: self, p0: p0, kc: kcur, aBlock: aBlock, aOrigin: aOrigin,
                                      bBlock: bBlock, bOrigin: bOrigin,
                                      bRowStride: bRowStride, beta: bi == 0 ? beta : 1, edge: edge, steps: steps)
                    // The narrow tail panels (16 and/or 8 columns) of a sparse A stored m×k go with the wide
                    // tiles of each row panel, over the same list of non-zero steps (run densely on its
                    // own, the 16-column tail of x·W₁ᵀ cost as much as two sparse 32-column panels, measured).
                    // Likewise, for Aᵀ read in place with C stored transposed (Σdh⊗x), the quad tiles take a whole
                    // 16-wide tail panel into their last strip, and the other panels run it densely.
                    let sparseTail = hasTail && wide1 > wide0 && directA
                        && (!transA && !transC || transA && transC && quadTilesUsable)
                    if wide1 > wide0 {
                        tiles.wide(rows: row0..<row1, panels: wide0..<wide1, sparseTail: sparseTail ? plan.wide..<bPanels : nil)
                    }
                    if hasTail {
                        tiles.narrow(rows: sparseTail ? row0 + (row1 - row0) / 8 * 8 ..< row1 : row0..<row1,
                                     panels: plan.wide..<bPanels)
                    }
                }
            }
        }
    }

    /// The micro-kernel calls of one k-block (starting at p0, length kc). Packed panels: the A panel
    /// holding row i is at aBlock + (i - aOrigin)·kc, the B panel starting at column j at
    /// bBlock + (j - bOrigin)·kc. Direct operands are addressed in place.
    struct Tiles {
        let job: Job
        let p0: Int, kc: Int
        let aBlock: UnsafePointer<Float>, aOrigin: Int
        let bBlock: UnsafePointer<Float>, bOrigin: Int
        /// > 0: the packed B block is row-major with this stride (`Job.bRowMajor`), else panels.
        let bRowStride: Int
        let beta: Float
        let edge: UnsafeMutablePointer<Float>
        /// Room for 5·kcMax indices: the non-zero k steps of an A panel, then of its four pairs of rows
        /// (`pairLists`).
        let steps: UnsafeMutablePointer<Int32>
        var pairLists: PairLists { PairLists(lists: steps + kcMax, stride: kcMax) }

        /// A operand for `rows` rows from row i: (pointer, step per k, stride per 8 rows). A stored m×k
        /// and read in place goes through the row-pointer kernels instead (whole 8-row panels only).
        @inline(__always)
        func aSource(_ i: Int, rows: Int) -> (UnsafePointer<Float>, Int, Int) {
            if job.directA && job.transA && i + rows <= job.plan.m {
                return (job.a + p0 * job.lda + i, job.lda, 8)
            }
            return (aBlock + (i - aOrigin) * kc, 8, 8 * kc)
        }

        /// B operand for the panel at column j of width w: (pointer, step per k).
        @inline(__always)
        func bSource(_ j: Int, width: Int) -> (UnsafePointer<Float>, Int) {
            if job.directB && j + width <= job.plan.n {
                return (job.b + p0 * job.ldb + j, job.ldb)
            }
            if bRowStride > 0 { return (bBlock + (j - bOrigin), bRowStride) }
            return (bBlock + (j - bOrigin) * kc, width)
        }

        /// 8×32 tiles over rows × 32-wide panels: each A panel (in L1) against all B panels (L2).
        @inline(__always)
        /// `sparseTail`: the narrow (16- or 8-wide) B panels that the whole 8-row panels read in place also
        /// run here, with their list of non-zero steps; `narrow` then does only the other rows.
        func wide(rows: Range<Int>, panels: Range<Int>, sparseTail: Range<Int>? = nil) {
            let alpha = job.alpha, ldc = job.ldc, n = job.plan.n, c = job.c, kc = self.kc
            let rowsInPlace = job.directA && !job.transA
            var bFinite: Bool? = nil, tailFinite: Bool? = nil
            // The 32-wide panels the pair tiles can take: whole ones (no column past n) whose B rows are
            // contiguous (B in place or packed row-major), for A stored m×k read in place. Not for Aᵀ read
            // in place (Σdh⊗x): there the pair tiles made the stage 17% slower (interleaved bench, stage
            // minima ~410 → ~490 µs on a loaded machine): a per-step scan of 4 pair lists, and 2-pixel tiles.
            let pairsPossible = rowsInPlace && (job.directB || bRowStride > 0)
            let pairPanels = panels.lowerBound..<(pairsPossible ? max(panels.lowerBound, min(panels.upperBound, n / 32)) : panels.lowerBound)
            // The columns the quad tiles can take (Aᵀ in place, C transposed): the whole 32-wide panels, and
            // a whole 16-wide tail panel right after them when this call runs the tail (`sparseTail`).
            let quadWide = job.quadTilesUsable ? max(panels.lowerBound, min(panels.upperBound, n / 32)) : panels.lowerBound
            let quadTailPanel: Int? = sparseTail.flatMap { tail in
                let (j0, width) = job.bPanel(tail.lowerBound)
                return job.quadTilesUsable && quadWide == panels.upperBound && width == 16 && j0 + 16 <= n ? tail.lowerBound : nil
            }
            let quadColumns = panels.lowerBound * 32 ..< quadWide * 32 + (quadTailPanel == nil ? 0 : 16)
            // Shared scans (`SharedPanelScans`): the piece that scans ahead first scans every whole panel of
            // the block that no other piece has claimed; the others walk the panels in their direction (the
            // order changes no value).
            let rowPanels = (rows.count + 7) / 8, descending = job.sharedScans?.descending == true
            if let run = job.sharedScans, run.scansAhead, rowsInPlace, !job.aLooksDense {
                for ir in stride(from: rows.lowerBound, to: min(rows.upperBound, job.plan.m) - 7, by: 8) {
                    run.scans.scanAhead(run, block: p0 / job.plan.kc, panel: ir / 8, rows: job.a + ir * job.lda + p0,
                                        lda: job.lda, kc: kc, limit: kc * 3 / 4)
                }
            }
            for t in 0..<rowPanels {
                let ir = rows.lowerBound + 8 * (descending ? rowPanels - 1 - t : t)
                let mr = min(8, rows.upperBound - ir)
                let (aPanel, aStep, _) = aSource(ir, rows: 8)
                // A stored m×k, 8 whole rows: read in place through row pointers.
                let aRows: UnsafePointer<Float>? = rowsInPlace && ir + 8 <= job.plan.m ? job.a + ir * job.lda + p0 : nil
                // Sparse A (MNIST pixels are 81% zeros; in 53% of the k steps all 8 rows of a panel
                // are 0): skip the k steps where the panel's 8 rows are all zero, if B is finite (0·inf
                // would be NaN). Exact: see `GEMM.nonZeroSteps`. Likewise Aᵀ stored k×m read in place,
                // but only with transposeC: callers choose it to make a sparse operand (pixels) the A
                // of a weight gradient; other Aᵀ operands are dense gradients, where the scan cost
                // 2% of the product (measured). Not when A (stored m×k) looks dense (`Job.aLooksDense`).
                let aColumns = job.transC && job.directA && job.transA && ir + 8 <= job.plan.m
                var sparseCount = -1, usePairs = false, useQuads = false
                var pairs = pairLists
                if aRows != nil && !job.aLooksDense || aColumns {
                    let limit = kc * 3 / 4
                    let count = withUnsafeMutablePointer(to: &pairs) { list in
                        if let aRows, let run = job.sharedScans,
                           let count = run.scans.scan(run, block: p0 / job.plan.kc, panel: ir / 8, rows: aRows, lda: job.lda,
                                                      kc: kc, limit: limit, into: steps, pairs: list) {
                            return count
                        }
                        let pairsWanted = pairPanels.isEmpty ? nil : list
                        let quadsWanted = quadColumns.isEmpty ? nil : list
                        return aRows.map { GEMM.nonZeroSteps($0, lda: job.lda, kc: kc, limit: limit, into: steps, pairs: pairsWanted) }
                            ?? GEMM.nonZeroSteps(columns: aPanel, lda: job.lda, kc: kc, limit: limit, into: steps, quads: quadsWanted)
                    }
                    if count <= limit {
                        if bFinite == nil { bFinite = finite(panels: panels) }
                        if bFinite! {
                            sparseCount = count
                            usePairs = !pairPanels.isEmpty && GEMM.pairTilesPay(pairSteps: pairs.total, panelSteps: count)
                            if aColumns && !quadColumns.isEmpty && GEMM.quadTilesPay(quadSteps: pairs.total, panelSteps: count) {
                                if let q = quadTailPanel, tailFinite == nil { tailFinite = finite(tail: q) }
                                useQuads = quadTailPanel == nil || tailFinite == true
                            }
                        }
                    }
                }
                if usePairs, let aRows { pairTiles(pairs, row: ir, panels: pairPanels, aRows: aRows) }
                if useQuads { quadTiles(pairs, row: ir, columns: quadColumns) }
                var jr = (useQuads ? quadWide : usePairs ? pairPanels.upperBound : panels.lowerBound) * 32
                let jEnd = panels.upperBound * 32
                while jr < jEnd {
                    let nr = min(32, n - jr)
                    let (bPanel, bStep) = bSource(jr, width: 32)
                    let cTile = c + ir * ldc + jr
                    let full = mr == 8 && nr == 32 && !job.transC
                    let dst = full ? cTile : edge, dstLd = full ? ldc : 32, dstBeta: Float = full ? beta : 0
                    if sparseCount >= 0, let aRows {
                        kernelRows8x32Sparse(sparseCount, steps, aRows, job.lda, bPanel, bStep, dst, dstLd, alpha, dstBeta)
                    } else if sparseCount >= 0 {
                        kernel8x32Sparse(sparseCount, steps, aPanel, aStep, bPanel, bStep, dst, dstLd, alpha, dstBeta)
                    } else if let aRows {
                        kernelRows8x32(kc, aRows, job.lda, bPanel, bStep, dst, dstLd, alpha, dstBeta)
                    } else {
                        kernel8x32(kc, aPanel, aStep, 0, bPanel, bStep, dst, dstLd, alpha, dstBeta)
                    }
                    if job.transC {
                        storeTransposed(rows: mr, cols: nr, src: edge, srcStride: 32, into: job.transposedC.at(row: ir, column: jr), beta: beta)
                    } else if !full {
                        storeEdge(rows: mr, cols: nr, src: edge, srcStride: 32, c: cTile, ldc: ldc, beta: beta)
                    }
                    jr += 32
                }
                if let tail = sparseTail, let aRows {
                    if sparseCount >= 0 && tailFinite == nil { tailFinite = tail.allSatisfy { finite(tail: $0) } }
                    for q in tail { tailTile(q, row: ir, aRows: aRows, sparseCount: tailFinite == true ? sparseCount : -1) }
                } else if let tail = sparseTail, aColumns {
                    for q in tail where !(useQuads && q == quadTailPanel) { transposedTailTile(q, row: ir) }
                }
                // Counted by one chunk per panel: the one holding the first wide panel.
                if let counts = job.stepCounts, panels.lowerBound == 0 {
                    // Quad tiles: the union's steps, as before them (the balance of Σdh⊗x's pieces was tuned on
                    // those, and MatrixCallPiecesTests models them).
                    counts[ir / 8] &+= usePairs ? GEMM.pairStepEquivalent(pairs.total) : Int32(sparseCount >= 0 ? sparseCount : kc)
                }
            }
        }

        /// The 8 rows at ir of A stored m×k, read in place (at aRows), against the 32-wide panels `panels`
        /// as four pair tiles, each over its own list. A pair's columns are cut into ⌈vectors / 13⌉
        /// near-equal strips, one kernel call each.
        @inline(__always)
        func pairTiles(_ pairs: PairLists, row ir: Int, panels: Range<Int>, aRows: UnsafePointer<Float>) {
            let j0 = panels.lowerBound * 32, vectors = panels.count * 2
            let (bRows, bStep) = bSource(j0, width: 32)
            let lda = job.lda
            for g in 0..<4 {
                let dst = job.c + (ir + 2 * g) * job.ldc + j0
                GEMM.forEachStrip(of: vectors, atMost: GEMM.pairMaxVectors) { v0, v1 in
                    GEMM.kernelPairSparse(vectors: v1 - v0, Int(pairs.counts[g]), pairs.list(g), aRows + 2 * g * lda, lda, 1,
                                          bRows + 16 * v0, bStep, dst + 16 * v0, job.ldc, job.alpha, beta)
                }
            }
        }

        /// The 8 rows at ir of Aᵀ read in place (C stored transposed) against the B columns `columns` (read in
        /// place) as two quad tiles, each over its own list. A quad's columns are cut into ⌈vectors / 6⌉
        /// near-equal strips, one kernel call each.
        @inline(__always)
        func quadTiles(_ quads: PairLists, row ir: Int, columns: Range<Int>) {
            let vectors = columns.count / 16
            let lda = job.lda
            let bRows = job.b + p0 * job.ldb + columns.lowerBound
            for g in 0..<2 {
                let a = job.a + p0 * lda + ir + 4 * g
                GEMM.forEachStrip(of: vectors, atMost: GEMM.quadMaxVectors) { v0, v1 in
                    GEMM.kernelQuadSparse(vectors: v1 - v0, Int(quads.counts[g]), quads.list(g), a, lda,
                                          bRows + 16 * v0, job.ldb,
                                          job.transposedC.at(row: ir + 4 * g, column: columns.lowerBound + 16 * v0), job.alpha, beta)
                }
            }
        }

        /// The narrow (16- or 8-wide) tail panel `q` for the whole 8-row panel at ir of Aᵀ read in place, C
        /// stored transposed: every step, as `narrow` would (only the quad tiles skip steps of it).
        @inline(__always)
        func transposedTailTile(_ q: Int, row ir: Int) {
            let (j0, width) = job.bPanel(q)
            let nr = min(width, job.plan.n - j0)
            let (aPanel, aStep, aStride) = aSource(ir, rows: 8)
            let (bPanel, bStep) = bSource(j0, width: width)
            if width == 16 {
                kernel8x16(kc, aPanel, aStep, aStride, bPanel, bStep, edge, width, job.alpha, 0)
            } else {
                kernel8x8(kc, aPanel, aStep, aStride, bPanel, bStep, edge, width, job.alpha, 0)
            }
            storeTransposed(rows: 8, cols: nr, src: edge, srcStride: width, into: job.transposedC.at(row: ir, column: j0), beta: beta)
        }

        /// The narrow (16- or 8-wide) tail panel `q` for the 8 rows at ir read in place (A stored m×k), over
        /// the wide tiles' list of non-zero steps when there is one.
        @inline(__always)
        func tailTile(_ q: Int, row ir: Int, aRows: UnsafePointer<Float>, sparseCount: Int) {
            let (j0, width) = job.bPanel(q)
            let nr = min(width, job.plan.n - j0)
            let (bPanel, bStep) = bSource(j0, width: width)
            let full = nr == width
            let dst = full ? job.c + ir * job.ldc + j0 : edge, dstLd = full ? job.ldc : width
            let dstBeta: Float = full ? beta : 0
            switch (sparseCount >= 0, width) {
            case (true, 16): kernelRows8x16Sparse(sparseCount, steps, aRows, job.lda, bPanel, bStep, dst, dstLd, job.alpha, dstBeta)
            case (true, _): kernelRows8x8Sparse(sparseCount, steps, aRows, job.lda, bPanel, bStep, dst, dstLd, job.alpha, dstBeta)
            case (false, 16): kernelRows8x16(kc, aRows, job.lda, bPanel, bStep, dst, dstLd, job.alpha, dstBeta)
            case (false, _): kernelRows8x8(kc, aRows, job.lda, bPanel, bStep, dst, dstLd, job.alpha, dstBeta)
            }
            if !full {
                storeEdge(rows: 8, cols: nr, src: edge, srcStride: width, c: job.c + ir * job.ldc + j0, ldc: job.ldc, beta: beta)
            }
        }

        /// Whether the narrow tail B panel `q` of this k-block holds only finite values.
        func finite(tail q: Int) -> Bool {
            let (j0, width) = job.bPanel(q)
            return finite(panelAt: j0, width: width)
        }

        /// Whether the 32-wide B panels `panels` of this k-block hold only finite values.
        func finite(panels: Range<Int>) -> Bool {
            panels.allSatisfy { finite(panelAt: $0 * 32, width: 32) }
        }

        /// Whether the B panel at column j0, `width` (8, 16 or 32) wide, holds only finite values in this
        /// k-block: x·0 is 0 for finite x and NaN for ±inf and NaN. Four independent sums over the
        /// panel's vectors: one chain of fused multiply-adds waited on its latency (4 cycles) at every
        /// step, which made this check cost 5% of a sparse product (measured).
        func finite(panelAt j0: Int, width: Int) -> Bool {
            if job.bKnownFinite { return true }
            let (bPanel, bStep) = bSource(j0, width: width)
            let perRow = max(1, width / 16), count = kc * perRow
            @inline(__always) func vector(_ i: Int) -> SIMD16<Float> {
                if width == 8 {
                    return SIMD16(lowHalf: UnsafeRawPointer(bPanel + i * bStep).loadUnaligned(as: SIMD8<Float>.self),
                                  highHalf: SIMD8())
                }
                let row = perRow == 2 ? i >> 1 : i, column = perRow == 2 ? i & 1 : 0
                return UnsafeRawPointer(bPanel + row * bStep + column * 16).loadUnaligned(as: SIMD16<Float>.self)
            }
            let zero = SIMD16<Float>()
            var probe0 = zero, probe1 = zero, probe2 = zero, probe3 = zero
            var i = 0
            while i + 4 <= count {
                probe0 = probe0.addingProduct(vector(i), zero)
                probe1 = probe1.addingProduct(vector(i + 1), zero)
                probe2 = probe2.addingProduct(vector(i + 2), zero)
                probe3 = probe3.addingProduct(vector(i + 3), zero)
                i += 4
            }
            while i < count {
                probe0 = probe0.addingProduct(vector(i), zero)
                i += 1
            }
            return ((probe0 + probe1) + (probe2 + probe3)).sum() == 0
        }

        /// The narrow (16- or 8-wide) panels against the rows: for each group of rows (kept in L1),
        /// each panel. A stored m×k read in place: 8 rows at a time. Otherwise up to 24 rows (3 A
        /// panels) of complete panels at a time, then the partial panel (< 8 rows) on its own.
        @inline(__always)
        func narrow(rows: Range<Int>, panels: Range<Int>) {
            let alpha = job.alpha, ldc = job.ldc, c = job.c, kc = self.kc, n = job.plan.n
            let rowsInPlace = job.directA && !job.transA
            var ir = rows.lowerBound
            while ir < rows.upperBound {
                let left = rows.upperBound - ir
                let tileRows = left < 8 || rowsInPlace ? 8 : min(24, left / 8 * 8)
                let mr = min(tileRows, left)
                let (aPanel, aStep, aStride) = aSource(ir, rows: tileRows)
                for q in panels {
                    let (j0, width) = job.bPanel(q)
                    let nr = min(width, n - j0)
                    let (bPanel, bStep) = bSource(j0, width: width)
                    let full = mr == tileRows && nr == width && !job.transC
                    let dst = full ? c + ir * ldc + j0 : edge
                    let dstLd = full ? ldc : width
                    let dstBeta: Float = full ? beta : 0
                    if rowsInPlace && mr == 8 {
                        let aRows = job.a + ir * job.lda + p0
                        if width == 16 {
                            kernelRows8x16(kc, aRows, job.lda, bPanel, bStep, dst, dstLd, alpha, dstBeta)
                        } else {
                            kernelRows8x8(kc, aRows, job.lda, bPanel, bStep, dst, dstLd, alpha, dstBeta)
                        }
                    } else {
                        switch (tileRows, width) {
                        case (24, 16): kernel24x16(kc, aPanel, aStep, aStride, bPanel, bStep, dst, dstLd, alpha, dstBeta)
                        case (16, 16): kernel16x16(kc, aPanel, aStep, aStride, bPanel, bStep, dst, dstLd, alpha, dstBeta)
                        case (8, 16): kernel8x16(kc, aPanel, aStep, aStride, bPanel, bStep, dst, dstLd, alpha, dstBeta)
                        case (24, 8): kernel24x8(kc, aPanel, aStep, aStride, bPanel, bStep, dst, dstLd, alpha, dstBeta)
                        case (16, 8): kernel16x8(kc, aPanel, aStep, aStride, bPanel, bStep, dst, dstLd, alpha, dstBeta)
                        default: kernel8x8(kc, aPanel, aStep, aStride, bPanel, bStep, dst, dstLd, alpha, dstBeta)
                        }
                    }
                    if job.transC {
                        storeTransposed(rows: mr, cols: nr, src: edge, srcStride: width,
                                        into: job.transposedC.at(row: ir, column: j0), beta: beta)
                    } else if !full {
                        storeEdge(rows: mr, cols: nr, src: edge, srcStride: width,
                                  c: c + ir * ldc + j0, ldc: ldc, beta: beta)
                    }
                }
                ir += tileRows
            }
        }
    }

    /// Calls `body(v0, v1)` for `vectors` SIMD16 vectors cut into ⌈vectors / most⌉ near-equal strips of at
    /// most `most` (the widest tile a narrow kernel keeps in registers), in order: one kernel call each.
    @inline(__always)
    static func forEachStrip(of vectors: Int, atMost most: Int, _ body: (_ v0: Int, _ v1: Int) -> Void) {
        let strips = (vectors + most - 1) / most
        var v0 = 0
        for strip in 0..<strips {
            let v1 = vectors * (strip + 1) / strips
            body(v0, v1)
            v0 = v1
        }
    }

    /// Writes the k steps p in 0..<kc where any of the 8 rows of A (row i at a + i·lda) is non-zero
    /// (or NaN) to `steps`, in order; returns their count.
    ///
    /// Why skipping the others is exact: a skipped step would add a·b = ±0 to every accumulator
    /// (a = ±0, b finite: the caller checks B), and acc + ±0 = acc for any non-zero acc; for a zero acc
    /// only the sign of the zero can differ (−0 + +0 = +0), never the value. The remaining steps run
    /// in the same order with the same fused multiply-adds, so the result has the value of the dense
    /// product, for any thread count and tiling.
    /// Stops early (returning more than `limit`) once more than `limit` steps are non-zero, or when
    /// more than 15/16 of the first 64 or more steps are: a dense panel (activations, gradients)
    /// then costs a few vector compares, not 3% of its product (measured).
    /// With `pairs`, also writes the four lists of its 2-row groups (rows 2g, 2g + 1) for the pair
    /// tiles (GEMMPairTiles.swift), from the same loads: two lane-mask sums per 16 steps instead of one.
    static func nonZeroSteps(_ a: UnsafePointer<Float>, lda: Int, kc: Int, limit: Int,
                             into steps: UnsafeMutablePointer<Int32>,
                             pairs: UnsafeMutablePointer<PairLists>? = nil) -> Int {
        let positions = setBitPositions
        var count = 0
        var p = 0
        while p + 16 <= kc {
            if let pairs {
                count = appendSteps(pairMasks: pairMasks(a, lda: lda, at: p), at: p, into: steps, count: count, pairs: pairs, positions)
            } else {
                @inline(__always) func bits(_ i: Int) -> SIMD16<UInt32> {
                    UnsafeRawPointer(a + (i &* lda &+ p)).loadUnaligned(as: SIMD16<UInt32>.self)
                }
                let union = (bits(0) | bits(1) | bits(2) | bits(3) | bits(4) | bits(5) | bits(6) | bits(7)) & nonZeroMagnitude
                // Lane l contributes 2^l when any row is non-zero at step p + l: union + 0x7fffffff carries
                // into the top bit exactly when union ≥ 1 (generic pointwiseMin compiled to a call).
                let mask = Int((((union &+ nonZeroMagnitude) &>> 31) &* laneBits).wrappedSum())
                count = compress(mask, p, into: steps, count: count, positions)
            }
            p += 16
            if scanGivesUp(count: count, scanned: p, limit: limit) { return limit + 1 }
        }
        while p < kc {
            count = appendStep(p, pairBits: pairBits(a, lda: lda, at: p), into: steps, count: count, pairs: pairs)
            p += 1
        }
        return count
    }

    /// Whether a scan of 8 rows gives up as dense once it has seen `count` non-zero steps in the first
    /// `scanned` (a multiple of 16): past `limit` of them, or past 15/16 of 64 steps or more.
    @inline(__always)
    static func scanGivesUp(count: Int, scanned p: Int, limit: Int) -> Bool {
        count > limit || (p >= 64 && count * 16 > p * 15)
    }

    // Whether a value is non-zero, on its bits: magnitude bits (sign cleared, so −0 is zero) not all 0;
    // NaN counts as non-zero. Integer vector ops throughout: Swift's SIMDMask comparisons and lane reads
    // compiled to per-lane code that cost ~4% of the mnist step (measured).
    static let nonZeroMagnitude = SIMD16<UInt32>(repeating: 0x7fff_ffff)
    static let laneBits = SIMD16<UInt32>(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)

    /// The pair masks of the 16 k steps from p of the 8 rows at `a` (row i at a + i·lda): bit l + 16·g is
    /// set when pair g (rows 2g, 2g + 1) is non-zero (or NaN) at step p + l.
    @inline(__always)
    static func pairMasks(_ a: UnsafePointer<Float>, lda: Int, at p: Int) -> Int {
        @inline(__always) func bits(_ i: Int) -> SIMD16<UInt32> {
            UnsafeRawPointer(a + (i &* lda &+ p)).loadUnaligned(as: SIMD16<UInt32>.self)
        }
        @inline(__always) func nonZero(_ x: SIMD16<UInt32>, _ y: SIMD16<UInt32>) -> SIMD16<UInt32> {
            (((x | y) & nonZeroMagnitude) &+ nonZeroMagnitude) &>> 31
        }
        // Two pairs per 32-bit lane sum.
        let low = Int(((nonZero(bits(0), bits(1)) | (nonZero(bits(2), bits(3)) &<< 16)) &* laneBits).wrappedSum())
        let high = Int(((nonZero(bits(4), bits(5)) | (nonZero(bits(6), bits(7)) &<< 16)) &* laneBits).wrappedSum())
        return low | high << 32
    }

    /// Lane g: whether pair g (rows 2g, 2g + 1) of the 8 rows at `a` is non-zero (or NaN) at step p (1) or
    /// not (0). For the steps after the last 16 of a k-block.
    @inline(__always)
    static func pairBits(_ a: UnsafePointer<Float>, lda: Int, at p: Int) -> SIMD4<Int32> {
        @inline(__always) func any(_ g: Int) -> Int32 { a[2 * g * lda + p] != 0 || a[(2 * g + 1) * lda + p] != 0 ? 1 : 0 }
        return SIMD4(any(0), any(1), any(2), any(3))
    }

    /// Appends the 16 steps from p that `masks` (`pairMasks`) sets to the four pair lists (`pairs`) and
    /// their union to `steps` (which holds `count` steps); returns the union's new count. Every list
    /// has room for 16 more.
    @inline(__always)
    static func appendSteps(pairMasks masks: Int, at p: Int, into steps: UnsafeMutablePointer<Int32>, count: Int,
                            pairs: UnsafeMutablePointer<PairLists>, _ positions: UnsafePointer<SIMD8<Int32>>) -> Int {
        let (low, high) = halves(masks)
        let list = pairs.pointee
        var counts = list.counts
        counts[0] = Int32(compress(low & 0xffff, p, into: list.list(0), count: Int(counts[0]), positions))
        counts[1] = Int32(compress(low >> 16, p, into: list.list(1), count: Int(counts[1]), positions))
        counts[2] = Int32(compress(high & 0xffff, p, into: list.list(2), count: Int(counts[2]), positions))
        counts[3] = Int32(compress(high >> 16, p, into: list.list(3), count: Int(counts[3]), positions))
        pairs.pointee.counts = counts
        return compress(unionMask(masks), p, into: steps, count: count, positions)
    }

    /// The two 32-bit halves of `pairMasks`: pairs 0 and 1, pairs 2 and 3.
    @inline(__always)
    static func halves(_ masks: Int) -> (Int, Int) {
        let word = UInt(bitPattern: masks)
        return (Int(truncatingIfNeeded: word & 0xffff_ffff), Int(truncatingIfNeeded: word >> 32))
    }

    /// The steps (bits l) where any pair of `pairMasks` is set.
    @inline(__always)
    static func unionMask(_ masks: Int) -> Int {
        let (low, high) = halves(masks)
        return (low | high | (low | high) >> 16) & 0xffff
    }

    /// Appends step p, whose pairs are non-zero where `pairBits` is 1, to the pair lists (when asked) and,
    /// if any pair is, to `steps` (which holds `count` steps); returns the new count. Without branches.
    @inline(__always)
    static func appendStep(_ p: Int, pairBits: SIMD4<Int32>, into steps: UnsafeMutablePointer<Int32>, count: Int,
                           pairs: UnsafeMutablePointer<PairLists>?) -> Int {
        if let pairs {
            for g in 0..<4 { pairs.pointee.list(g)[Int(pairs.pointee.counts[g])] = Int32(p) }
            pairs.pointee.counts &+= pairBits
        }
        steps[count] = Int32(p)
        return count &+ (pairBits == .zero ? 0 : 1)
    }

    /// Appends the steps p + l for the set bits l of the 16-bit `mask` to `list` (which holds `count`
    /// steps and has room for 16 more); returns the new count. Each byte of the mask selects its
    /// set-bit positions from `positions` (`setBitPositions`).
    @inline(__always)
    static func compress(_ mask: Int, _ p: Int, into list: UnsafeMutablePointer<Int32>, count: Int,
                         _ positions: UnsafePointer<SIMD8<Int32>>) -> Int {
        var count = count
        if mask == 0xffff {
            let lanes = SIMD16<Int32>(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
            UnsafeMutableRawPointer(list + count).storeBytes(of: lanes &+ Int32(p), as: SIMD16<Int32>.self)
            count &+= 16
        } else if mask != 0 {
            let low = mask & 255, high = mask >> 8
            UnsafeMutableRawPointer(list + count).storeBytes(of: positions[low] &+ Int32(p), as: SIMD8<Int32>.self)
            count &+= low.nonzeroBitCount
            UnsafeMutableRawPointer(list + count).storeBytes(of: positions[high] &+ Int32(p + 8), as: SIMD8<Int32>.self)
            count &+= high.nonzeroBitCount
        }
        return count
    }

    /// For each byte value, the positions of its set bits in increasing order (then zeros): the
    /// compress table of `nonZeroSteps` (8 KB, allocated once and never freed).
    static let setBitPositions: UnsafePointer<SIMD8<Int32>> = {
        let table = UnsafeMutablePointer<SIMD8<Int32>>.allocate(capacity: 256)
        for byte in 0..<256 {
            var lanes = SIMD8<Int32>(), count = 0
            for bit in 0..<8 where byte & (1 << bit) != 0 {
                lanes[count] = Int32(bit)
                count += 1
            }
            table[byte] = lanes
        }
        return UnsafePointer(table)
    }()

    /// `nonZeroSteps` for 8 columns of a matrix stored k×m (step p's 8 values at a + p·lda, contiguous):
    /// the operand Aᵀ read in place. Same early exits.
    /// With `quads`, also writes the lists of its two 4-row groups (rows 0..<4, 4..<8) for the quad tiles
    /// (GEMMQuadTiles.swift) into lists 0 and 1, from the same loads.
    static func nonZeroSteps(columns a: UnsafePointer<Float>, lda: Int, kc: Int, limit: Int,
                             into steps: UnsafeMutablePointer<Int32>,
                             quads: UnsafeMutablePointer<PairLists>? = nil) -> Int {
        if let quads {
            // Whether any of 4 floats is non-zero, on their bits: the magnitude bits (sign cleared, so −0 is
            // zero; NaN counts as non-zero) of two 8-byte loads, or-ed. Branch-free appends to all three lists.
            let magnitude: UInt64 = 0x7fff_ffff_7fff_ffff
            let low = quads.pointee.list(0), high = quads.pointee.list(1)
            let raw = UnsafeRawPointer(a)
            var count = 0, lowCount = 0, highCount = 0
            var p = 0
            while p < kc {
                let r = raw + p &* lda &* 4
                let lowBits = (r.loadUnaligned(as: UInt64.self) | r.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) & magnitude
                let highBits = (r.loadUnaligned(fromByteOffset: 16, as: UInt64.self) | r.loadUnaligned(fromByteOffset: 24, as: UInt64.self)) & magnitude
                let lowAny = lowBits != 0 ? 1 : 0, highAny = highBits != 0 ? 1 : 0
                steps[count] = Int32(p); low[lowCount] = Int32(p); high[highCount] = Int32(p)
                count &+= lowAny | highAny; lowCount &+= lowAny; highCount &+= highAny
                p &+= 1
                if p & 15 == 0 && scanGivesUp(count: count, scanned: p, limit: limit) { return limit + 1 }
            }
            quads.pointee.counts = SIMD4(Int32(lowCount), Int32(highCount), 0, 0)
            return count
        }
        let zero = SIMD8<Float>()
        var count = 0
        var p = 0
        while p < kc {
            let v = UnsafeRawPointer(a + p &* lda).loadUnaligned(as: SIMD8<Float>.self)
            steps[count] = Int32(p)
            count &+= any(v .!= zero) ? 1 : 0
            p &+= 1
            if p & 15 == 0 && scanGivesUp(count: count, scanned: p, limit: limit) { return limit + 1 }
        }
        return count
    }

    /// Where C stored transposed keeps op(C): its column j is row j of C (c + j·ldc), or, with a row map,
    /// row `rows[j]` (`ZeroRowSkip`: the product of the live rows only, stored straight into their rows).
    /// `c` already points at the first row of op(C) the tile writes (its i offset).
    struct TransposedC {
        let c: UnsafeMutablePointer<Float>
        let ldc: Int
        /// The row of C for each column of op(C), from the column `column(0)` stands for.
        let rows: UnsafePointer<Int32>?

        @inline(__always) func column(_ j: Int) -> UnsafeMutablePointer<Float> {
            if let rows { return c + Int(rows[j]) &* ldc }
            return c + j &* ldc
        }

        /// The same target with op(C)'s rows from i and columns from j.
        @inline(__always) func at(row i: Int, column j: Int) -> TransposedC {
            if let rows { return TransposedC(c: c + i, ldc: ldc, rows: rows + j) }
            return TransposedC(c: c + j &* ldc + i, ldc: ldc, rows: nil)
        }
    }

    /// storeEdge into C stored transposed: the tile's element (i, j) goes to column(j)[i]. Whole 8×8
    /// blocks are transposed in registers (three perfect unshuffles of the 64 values turn index 8i + j
    /// into 8j + i), the rest element by element; both apply the same formula as `storeEdge`.
    @inline(__always)
    static func storeTransposed(rows: Int, cols: Int, src: UnsafeMutablePointer<Float>, srcStride: Int,
                                into target: TransposedC, beta: Float) {
        let mode = beta == 0 ? 0 : (beta == 1 ? 1 : 2)
        let one = SIMD8<Float>(repeating: 1), vb = SIMD8<Float>(repeating: beta)
        var i0 = 0
        while i0 + 8 <= rows {
            var j0 = 0
            while j0 + 8 <= cols {
                @inline(__always) func row(_ i: Int) -> SIMD8<Float> {
                    UnsafeRawPointer(src + (i0 + i) * srcStride + j0).loadUnaligned(as: SIMD8<Float>.self)
                }
                var v0 = SIMD16(lowHalf: row(0), highHalf: row(1)), v1 = SIMD16(lowHalf: row(2), highHalf: row(3))
                var v2 = SIMD16(lowHalf: row(4), highHalf: row(5)), v3 = SIMD16(lowHalf: row(6), highHalf: row(7))
                for _ in 0..<3 {
                    (v0, v1, v2, v3) = (SIMD16(lowHalf: v0.evenHalf, highHalf: v1.evenHalf),
                                        SIMD16(lowHalf: v2.evenHalf, highHalf: v3.evenHalf),
                                        SIMD16(lowHalf: v0.oddHalf, highHalf: v1.oddHalf),
                                        SIMD16(lowHalf: v2.oddHalf, highHalf: v3.oddHalf))
                }
                @inline(__always) func d(_ j: Int) -> UnsafeMutableRawPointer { UnsafeMutableRawPointer(target.column(j0 + j) + i0) }
                update(d(0), v0.lowHalf, one, vb, mode); update(d(1), v0.highHalf, one, vb, mode)
                update(d(2), v1.lowHalf, one, vb, mode); update(d(3), v1.highHalf, one, vb, mode)
                update(d(4), v2.lowHalf, one, vb, mode); update(d(5), v2.highHalf, one, vb, mode)
                update(d(6), v3.lowHalf, one, vb, mode); update(d(7), v3.highHalf, one, vb, mode)
                j0 += 8
            }
            for j in j0..<cols {
                for i in i0..<i0 + 8 { storeOne(src[i * srcStride + j], target.column(j) + i, beta) }
            }
            i0 += 8
        }
        for i in i0..<rows {
            for j in 0..<cols { storeOne(src[i * srcStride + j], target.column(j) + i, beta) }
        }
    }

    @inline(__always)
    static func storeOne(_ s: Float, _ d: UnsafeMutablePointer<Float>, _ beta: Float) {
        if beta == 0 { d.pointee = s } else if beta == 1 { d.pointee = d.pointee + s } else { d.pointee = s + beta * d.pointee }
    }

    /// c = s (beta == 0), c = c + s (beta == 1), c = s + beta·c otherwise, where s = alpha·acc was
    /// stored by a kernel into `src`. The same operations as the kernels' `update`.
    @inline(__always)
    static func storeEdge(rows: Int, cols: Int, src: UnsafeMutablePointer<Float>, srcStride: Int,
                          c: UnsafeMutablePointer<Float>, ldc: Int, beta: Float) {
        for i in 0..<rows {
            let s = src + i * srcStride, d = c + i * ldc
            if beta == 0 {
                for j in 0..<cols { d[j] = s[j] }
            } else if beta == 1 {
                for j in 0..<cols { d[j] = d[j] + s[j] }
            } else {
                for j in 0..<cols { d[j] = s[j] + beta * d[j] }
            }
        }
    }

    // MARK: Workspaces

    /// Packing buffers (and the packing counters) for one thread of one running multiply. Grown on
    /// demand, never shrunk, reused across calls through `pool`. `shared` holds the operand packed
    /// once per call (read by all the call's threads); `scratch` the chunk-private packing.
    final class Workspace: @unchecked Sendable {
        private(set) var shared: UnsafeMutablePointer<Float>
        private(set) var scratch: UnsafeMutablePointer<Float>
        private var sharedCapacity = 0, scratchCapacity = 0
        let nextPiece = Atomic<Int>(0)
        let donePieces = Atomic<Int>(0)
        let nextChunk = Atomic<Int>(0)
        let doneChunks = Atomic<Int>(0)

        init() {
            shared = Workspace.allocate(0)
            scratch = Workspace.allocate(0)
        }

        deinit {
            shared.deallocate()
            scratch.deallocate()
        }

        func reserve(sharedCount: Int, privateCount: Int) {
            if sharedCount > sharedCapacity {
                shared.deallocate()
                sharedCapacity = max(sharedCount, sharedCapacity * 3 / 2)
                shared = Workspace.allocate(sharedCapacity)
            }
            if privateCount > scratchCapacity {
                scratch.deallocate()
                scratchCapacity = max(privateCount, scratchCapacity * 3 / 2)
                scratch = Workspace.allocate(scratchCapacity)
            }
        }

        private static func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
            UnsafeMutableRawPointer.allocate(byteCount: max(count, 16) * 4, alignment: 64)
                .bindMemory(to: Float.self, capacity: max(count, 16))
        }
    }

    /// Idle workspaces. A call takes one and gives it back afterwards, so in steady state nothing
    /// is allocated, and concurrent callers (e.g. from concurrentPerform workers) never share one.
    static let pool = Mutex<[Workspace]>([])

    @inline(__always)
    static func withWorkspace(_ body: (Workspace) -> Void) {
        let ws = pool.withLock { $0.popLast() } ?? Workspace()
        body(ws)
        pool.withLock { $0.append(ws) }
    }
}
