// Narrow sparse tiles for a transposed weight gradient: 4 rows of op(A) × up to 6 SIMD16 vectors (24
// accumulators), run over the k steps where any of the 4 rows is not zero, and stored transposed.
//
// Why: Σdh⊗x of the mnist step runs as Cᵀ = xᵀ·dh (A = xᵀ read in place: 8 consecutive pixels of one
// image per k step, k = the images). An 8-pixel panel skips an image only when all 8 pixels are 0:
// union density 0.39; over 4 pixels it is 0.28. Per listed step a 4-row tile does 4·V FMAs for V B loads
// and 4 broadcasts, ~1.1× the 8×32 tile's time per row-step (prototype, one thread, kernels alone, one
// 208-unit piece: 8×32 162–178 µs, 4 × (6+6+1) vectors 124–149 µs; 2 × 13 was 132–180, 3 × (9+4) 120–152,
// but 4 divides the 8-pixel panel, so its scan, list and fallback stay).
// The lists of both 4-row groups come from the panel's scan (`GEMM.nonZeroSteps(columns:quads:)`), two
// 8-byte loads per group and step, no extra pass. 4 × 7 vectors spilled (28 + 4 + 1 > 32 registers).
//
// The store: the tile is 4 rows (pixels) × 16·V columns (units) of op(C), stored transposed, so each
// column is 4 consecutive floats of a C row (16 bytes). Each quad of accumulators (one per row) is
// transposed in registers (four perfect unshuffles of its 64 values turn index 16r + l into 4l + r) and
// written as 16 stores of 4 floats with the same formula as `GEMM.update`.
//
// A value (r, p) is read at a[p·aStep + r]; B at b + p·bStep + 16·v (B read in place, columns contiguous).
// Same operation sequence per element as every other kernel: 0, then one FMA per listed step in order,
// then the store formula.

extension GEMM {
    /// Rows of a quad tile, and the most SIMD16 vectors one call takes (4 × 6 accumulators + 4 broadcasts
    /// + 1 B vector ≤ 32 registers).
    static let quadRows = 4
    static let quadMaxVectors = 6

    /// A quad tile's width as a type, so that the generic kernel is specialised and unrolled per width.
    struct QuadTile<let vectors: Int> {}

    typealias Quad = (SIMD16<Float>, SIMD16<Float>, SIMD16<Float>, SIMD16<Float>)

    @inline(__always)
    static func quadKernel<let V: Int>(_: QuadTile<V>.Type, _ count: Int, _ steps: UnsafePointer<Int32>,
                                       _ a: UnsafePointer<Float>, _ aStep: Int,
                                       _ b: UnsafePointer<Float>, _ bStep: Int,
                                       _ c: TransposedC, _ alpha: Float, _ beta: Float) {
        var acc = InlineArray<V, Quad>(repeating: (SIMD16(), SIMD16(), SIMD16(), SIMD16()))
        let rb = UnsafeRawPointer(b)
        let bBytes = bStep &* 4
        var t = 0
        while t < count {
            let p = Int(steps[t])
            let pa = a + p &* aStep
            let a0 = SIMD16<Float>(repeating: pa[0]), a1 = SIMD16<Float>(repeating: pa[1])
            let a2 = SIMD16<Float>(repeating: pa[2]), a3 = SIMD16<Float>(repeating: pa[3])
            let pb = rb + p &* bBytes
            for v in 0..<V {
                let bv = pb.loadUnaligned(fromByteOffset: 64 &* v, as: SIMD16<Float>.self)
                acc[v].0 = acc[v].0.addingProduct(a0, bv); acc[v].1 = acc[v].1.addingProduct(a1, bv)
                acc[v].2 = acc[v].2.addingProduct(a2, bv); acc[v].3 = acc[v].3.addingProduct(a3, bv)
            }
            t &+= 1
        }
        let mode = beta == 0 ? 0 : (beta == 1 ? 1 : 2)
        for v in 0..<V {
            storeQuadTransposed(acc[v], c.at(row: 0, column: 16 &* v), alpha: alpha, beta: beta, mode: mode)
        }
    }

    /// Column l (0..<16) of the quad (rows r = 0..<4) to c.column(l)[0 ..< 4], through `update`.
    @inline(__always)
    static func storeQuadTransposed(_ quad: Quad, _ c: TransposedC, alpha: Float, beta: Float, mode: Int) {
        var (v0, v1, v2, v3) = quad
        for _ in 0..<4 {
            (v0, v1, v2, v3) = (SIMD16(lowHalf: v0.evenHalf, highHalf: v1.evenHalf),
                                SIMD16(lowHalf: v2.evenHalf, highHalf: v3.evenHalf),
                                SIMD16(lowHalf: v0.oddHalf, highHalf: v1.oddHalf),
                                SIMD16(lowHalf: v2.oddHalf, highHalf: v3.oddHalf))
        }
        // Column l is now at vector l / 4, lanes 4·(l % 4) ..< 4·(l % 4) + 4.
        let va = SIMD4<Float>(repeating: alpha), vb = SIMD4<Float>(repeating: beta)
        var l = 0
        @inline(__always) func put(_ x: SIMD4<Float>) {
            update(UnsafeMutableRawPointer(c.column(l)), x, va, vb, mode)
            l &+= 1
        }
        @inline(__always) func putAll(_ v: SIMD16<Float>) {
            put(v.lowHalf.lowHalf); put(v.lowHalf.highHalf); put(v.highHalf.lowHalf); put(v.highHalf.highHalf)
        }
        putAll(v0); putAll(v1); putAll(v2); putAll(v3)
    }

    /// C (stored transposed) columns 0..<16·vectors of rows 0..<4 = alpha · Σ over the listed steps of
    /// A[0..<4, p] ⊗ B[p, ·] + beta · C (1 ≤ vectors ≤ 6).
    @inline(never)
    static func kernelQuadSparse(vectors: Int, _ count: Int, _ steps: UnsafePointer<Int32>,
                                 _ a: UnsafePointer<Float>, _ aStep: Int,
                                 _ b: UnsafePointer<Float>, _ bStep: Int,
                                 _ c: TransposedC, _ alpha: Float, _ beta: Float) {
        switch vectors {
        case 1: quadKernel(QuadTile<1>.self, count, steps, a, aStep, b, bStep, c, alpha, beta)
        case 2: quadKernel(QuadTile<2>.self, count, steps, a, aStep, b, bStep, c, alpha, beta)
        case 3: quadKernel(QuadTile<3>.self, count, steps, a, aStep, b, bStep, c, alpha, beta)
        case 4: quadKernel(QuadTile<4>.self, count, steps, a, aStep, b, bStep, c, alpha, beta)
        case 5: quadKernel(QuadTile<5>.self, count, steps, a, aStep, b, bStep, c, alpha, beta)
        default: quadKernel(QuadTile<6>.self, count, steps, a, aStep, b, bStep, c, alpha, beta)
        }
    }

    /// Whether the two quad tiles of an 8-row panel cost less than its 8×32 tiles: `quadSteps` steps in
    /// both lists together (each of 4 rows) against `panelSteps` of the union (each of 8 rows). Per
    /// row-step the quad tile took ~1.1× the 8×32 tile's time in the prototype.
    @inline(__always)
    static func quadTilesPay(quadSteps: Int, panelSteps: Int) -> Bool {
        quadSteps * 4 * 11 < panelSteps * 8 * 10
    }
}
