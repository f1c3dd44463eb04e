/// One GEMM call of a kernel program, bound to memory: C[m×n] = op(A)·op(B) (beta = 0).
///
/// A call can be cut into pieces along the rows or the columns of C, each piece a smaller GEMM call on
/// one thread. The GEMM computes every C[i, j] with the same operations whatever tile or call it is in
/// (its k-blocking depends only on k), so the pieces give the same bits as the whole call.
struct MatrixCall {
    var transposeA: Bool
    var transposeB: Bool
    var m: Int
    var n: Int
    var k: Int
    var a: UnsafePointer<Float>
    var lda: Int
    var b: UnsafePointer<Float>
    var ldb: Int
    var c: UnsafeMutablePointer<Float>
    var ldc: Int
    /// The columns of the whole call's C this call computes (all of them unless it is a piece; for a
    /// balanced piece, those of its current or latest run).
    var columns: Range<Int> {
        get { balance.map { $0.columns(of: balancedPiece) } ?? fixedColumns }
        set { fixedColumns = newValue; balance = nil }
    }
    private var fixedColumns: Range<Int>
    /// Set on the pieces of a transposed product cut by columns: the whole call, of which piece
    /// `balancedPiece` computes the columns `balance` gives it when it runs.
    private var balance: ColumnBalance? = nil
    private var balancedPiece = 0
    /// Set with `balance`: the copy of dh's live columns the pieces make together (`ZeroRowSkip`).
    private var sharedCopy: ZeroRowSkip.SharedCopy? = nil
    /// A transposed product whose dead-unit rows `ZeroRowSkip` may skip: A (dh) stored k×m, B k×n.
    private var skipsZeroRows: Bool { transposedProduct && transposeA && !transposeB }
    /// Set on the column pieces of a product whose A is stored m×k and read in place by rows: the zero
    /// scans of A, made once per run by whichever piece comes first, and this piece's number there.
    private(set) var sharedScans: SharedPanelScans? = nil
    private var scanPiece = 0
    /// Computes Cᵀ = op(B)ᵀ·op(A)ᵀ, stored transposed into C, so that B is the GEMM's A operand, whose
    /// all-zero k steps (per 8 rows) it skips. Chosen for a weight gradient aᵀ·x whose x is a data input:
    /// image pixels are mostly 0 (MNIST: 81%; in 61% of the k steps a block of 8 pixels is all 0).
    /// Same operations per element, so same values (up to the sign of zeros) as the direct product.
    var transposedProduct = false
    /// B is the data batch, known to hold only finite values (`Executable.bind(_:to:finite:)`): the
    /// dead-unit skip of a transposed product need not check it.
    var bFinite = false

    init(_ kernel: MatrixKernel, _ graph: Graph, batch: Int, pointer: (ValueID) -> UnsafeMutablePointer<Float>) {
        let d = kernel.dimensions(graph, batch: batch)
        (m, n, k, transposeA, transposeB) = (d.m, d.n, d.k, d.transposeA, d.transposeB)
        a = UnsafePointer(pointer(kernel.a))
        b = UnsafePointer(pointer(kernel.b))
        c = pointer(kernel.node)
        lda = transposeA ? m : k
        ldb = transposeB ? k : n
        ldc = n
        fixedColumns = 0..<n
        if kernel.op == .outerSum, case .input = graph[kernel.b].op { transposedProduct = true }
    }

    /// A call on given memory (tests): C[m×n] = op(A)·op(B), every matrix stored with its minimal
    /// leading dimension unless one is given.
    init(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int? = nil,
         b: UnsafePointer<Float>, ldb: Int? = nil, c: UnsafeMutablePointer<Float>, ldc: Int? = nil,
         transposedProduct: Bool = false) {
        (self.transposeA, self.transposeB, self.m, self.n, self.k) = (transposeA, transposeB, m, n, k)
        (self.a, self.b, self.c) = (a, b, c)
        self.lda = lda ?? (transposeA ? m : k)
        self.ldb = ldb ?? (transposeB ? k : n)
        self.ldc = ldc ?? n
        fixedColumns = 0..<n
        self.transposedProduct = transposedProduct
    }

    func run(threads: Int) {
        if let balance {
            let range = balance.begin(piece: balancedPiece)
            columnPiece(range).multiply(threads: threads, stepCounts: balance.steps + range.lowerBound / 8, sharedCopy: sharedCopy)
            balance.end()
        } else {
            multiply(threads: threads, stepCounts: nil, scans: sharedScans?.begin(piece: scanPiece))
        }
    }

    /// The product itself; a transposed product adds each 8-column panel's k steps to `stepCounts`.
    private func multiply(threads: Int, stepCounts: UnsafeMutablePointer<Int32>?, scans: SharedPanelScans.Run? = nil,
                          sharedCopy: ZeroRowSkip.SharedCopy? = nil) {
        if transposedProduct {
            // Cᵀ = op(B)ᵀ·op(A)ᵀ over the m rows of op(A) at `a`, op(C)'s columns to C's rows `rows` (nil: in order).
            func transposed(_ a: UnsafePointer<Float>, _ lda: Int, _ m: Int, rows: UnsafePointer<Int32>?, finite: Bool) {
                GEMM.multiply(transposeA: !transposeB, transposeB: !transposeA, m: n, n: m, k: k, alpha: 1,
                              a: b, lda: ldb, b: a, ldb: lda, beta: 0, c: c, ldc: ldc, transposeC: true, cRows: rows,
                              stepCounts: stepCounts, bFinite: finite, threads: threads)
            }
            // The rows of C for units whose column of dh is all zero (dead ReLU units) are +0: skipped.
            if skipsZeroRows && ZeroRowSkip.run(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc,
                                                bFinite: bFinite, shared: sharedCopy.map { ($0, balancedPiece) },
                                                product: { transposed($0, $1, $2, rows: $3, finite: $4) }) {
                return
            }
            transposed(a, lda, m, rows: nil, finite: false)
            return
        }
        GEMM.multiply(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 1,
                      a: a, lda: lda, b: b, ldb: ldb, beta: 0, c: c, ldc: ldc, transposeC: false,
                      stepCounts: nil, sharedScans: scans, threads: threads)
    }

    var flops: Int { 2 * m * n * k }

    /// Up to `count` pieces covering C. The cut goes across the dimension whose split repacks less (or
    /// across the columns when `byColumns`: the caller runs a fused kernel over each piece's columns):
    /// every piece packs all of the operand it shares (A, m·k floats, when C is cut by columns; B, k·n,
    /// when cut by rows). Rows and columns are cut as evenly as multiples of 8 allow; a transposed
    /// product's column pieces are cut anew at each run, from the data (`ColumnBalance`).
    ///
    /// Why columns at 8 rather than at whole 32-wide panels: the GEMM runs a piece's columns past its
    /// last multiple of 32 as a 16- or 8-wide panel at nearly the cost per column of the wide ones, so
    /// equal widths are the most even. h·W₄ᵀ (n = 784) in 392 + 392 columns instead of 384 + 400: the
    /// slower piece 382 → 377–379 µs, the stage 387 → 383–384 µs (medians over 10 runs of the fastest
    /// of 600 steps, 2 threads). With an epilogue the widths stay multiples of 16, so that the fused kernel
    /// reads whole SIMD16 vectors of each row in place: x·W₁ᵀ (n = 400, sparse A) in 200 + 200 columns
    /// was no faster than in 192 + 208 (238 and 239 µs a piece with the epilogue, against 219 and 238).
    ///
    /// Column pieces of a product whose A is stored m×k and read in place by rows share the zero scans of
    /// A (`SharedPanelScans`): each run of the product must then run every piece once.
    func pieces(_ count: Int, byColumns forced: Bool = false) -> [MatrixCall] {
        precondition(balance == nil, "internal error: pieces of a balanced piece")
        guard count > 1 else { return [self] }
        let byColumns = forced || (m * k <= k * n ? n >= 64 : m < 16)
        let length = byColumns ? n : m, unit = forced && !transposedProduct ? 16 : 8
        let parts = min(count, length / unit)
        guard parts > 1 else { return [self] }
        if byColumns && transposedProduct {
            let balance = ColumnBalance(parts: parts, columns: n)
            let copy = skipsZeroRows ? ZeroRowSkip.SharedCopy(pieces: parts, k: k, m: m) : nil
            return (0..<parts).map { p in
                var piece = self
                piece.balance = balance
                piece.balancedPiece = p
                piece.sharedCopy = copy
                return piece
            }
        }
        var result: [MatrixCall] = []
        var start = 0
        for p in 0..<parts {
            let end = p == parts - 1 ? length : ((length * (p + 1) / parts + unit / 2) / unit * unit)
            guard end > start else { continue }
            result.append(byColumns ? columnPiece(start..<end) : rowPiece(start..<end))
            start = end
        }
        if byColumns && result.count > 1 && !transposeA && GEMM.Job.readsAInPlace(lda: lda) && m >= 8 {
            let plan = GEMM.Plan(m: m, n: n, k: k)
            let scans = SharedPanelScans(kBlocks: plan.kBlocks, panels: plan.mPanels, kc: plan.kc, widths: result.map(\.n))
            for p in result.indices {
                result[p].sharedScans = scans
                result[p].scanPiece = p
            }
        }
        return result
    }

    /// The piece of this call that computes the rows `range` of its C.
    func rowPiece(_ range: Range<Int>) -> MatrixCall {
        precondition(balance == nil, "internal error: a row piece of a balanced piece")
        var piece = self
        piece.sharedScans = nil
        piece.m = range.count
        piece.a = transposeA ? a + range.lowerBound : a + range.lowerBound * lda
        piece.c = c + range.lowerBound * ldc
        return piece
    }

    /// The piece of this call that computes the columns `range` of its C.
    func columnPiece(_ range: Range<Int>) -> MatrixCall {
        var piece = self
        piece.sharedScans = nil
        piece.n = range.count
        piece.b = transposeB ? b + range.lowerBound * ldb : b + range.lowerBound
        piece.c = c + range.lowerBound
        piece.columns = fixedColumns.lowerBound + range.lowerBound..<fixedColumns.lowerBound + range.upperBound
        return piece
    }
}
