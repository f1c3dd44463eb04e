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
    /// The columns of the whole call's C this call computes (all of them unless it is a piece).
    var columns: Range<Int>
    /// Computes Cᵀ = op(B)ᵀ·op(A)ᵀ, stored transposed into C, so that B is the GEMM's A operand, whose
    /// all-zero k steps (per 8 rows) it skips. Chosen for a weight gradient aᵀ·x whose x is a data input:
    /// image pixels are mostly 0 (MNIST: 81%; in 61% of the k steps a block of 8 pixels is all 0).
    /// Same operations per element, so same values (up to the sign of zeros) as the direct product.
    var transposedProduct = false

    init(_ kernel: MatrixKernel, _ graph: Graph, batch: Int, pointer: (ValueID) -> UnsafeMutablePointer<Float>) {
        let d = kernel.dimensions(graph, batch: batch)
        (m, n, k, transposeA, transposeB) = (d.m, d.n, d.k, d.transposeA, d.transposeB)
        a = UnsafePointer(pointer(kernel.a))
        b = UnsafePointer(pointer(kernel.b))
        c = pointer(kernel.node)
        lda = transposeA ? m : k
        ldb = transposeB ? k : n
        ldc = n
        columns = 0..<n
        if kernel.op == .outerSum, case .input = graph[kernel.b].op { transposedProduct = true }
    }

    func run(threads: Int) {
        if transposedProduct {
            GEMM.multiply(transposeA: !transposeB, transposeB: !transposeA, m: n, n: m, k: k, alpha: 1,
                          a: b, lda: ldb, b: a, ldb: lda, beta: 0, c: c, ldc: ldc, transposeC: true, threads: threads)
            return
        }
        GEMM.multiply(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 1,
                      a: a, lda: lda, b: b, ldb: ldb, beta: 0, c: c, ldc: ldc, threads: threads)
    }

    var flops: Int { 2 * m * n * k }

    /// Up to `count` pieces covering C. The cut goes across the dimension whose split repacks less (or
    /// across the columns when `byColumns`): every piece packs all of the operand it shares (A, m·k
    /// floats, when C is cut by columns; B, k·n, when cut by rows). Columns are cut at multiples of 32
    /// and rows at multiples of 8 (the GEMM's panels; a transposed product's columns at 8 too).
    func pieces(_ count: Int, byColumns forced: Bool = false) -> [MatrixCall] {
        guard count > 1 else { return [self] }
        let byColumns = forced || (m * k <= k * n ? n >= 64 : m < 16)
        // A transposed product's columns are the GEMM's rows, whose panels are 8 rows: cut at 8, so
        // the two halves of x's 784 pixels are 392 each (at 32: 384 and 400, and the larger piece of
        // the first layer's weight gradient took 210 µs against 185, measured).
        let length = byColumns ? n : m, unit = byColumns && !transposedProduct ? 32 : 8
        let parts = min(count, length / unit)
        guard parts > 1 else { return [self] }
        var result: [MatrixCall] = []
        var start = 0
        for p in 0..<parts {
            let end = p == parts - 1 ? length : ((length * (p + 1) / parts + unit / 2) / unit * unit)
            guard end > start else { continue }
            var piece = self
            if byColumns {
                piece.n = end - start
                piece.b = transposeB ? b + start * ldb : b + start
                piece.c = c + start
                piece.columns = columns.lowerBound + start..<columns.lowerBound + end
            } else {
                piece.m = end - start
                piece.a = transposeA ? a + start : a + start * lda
                piece.c = c + start * ldc
            }
            result.append(piece)
            start = end
        }
        return result
    }
}
