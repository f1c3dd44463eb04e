// Narrow sparse tiles: 2 rows of op(A) × up to 13 SIMD16 vectors (26 accumulators), run over the
// k steps where either of the 2 rows is not zero (`GEMM.nonZeroSteps(... pairs:)` lists them).
//
// Why: a sparse A (MNIST pixels, 81% zeros) skips a k step of an 8-row panel only when all 8 rows are 0
// there, and the union of 8 rows is dense: x·W₁ᵀ's panels are non-zero in 47% of their steps, pairs of
// rows in 29%, single values in 19%. Per listed step a pair tile does 26 FMAs for 13 B loads, about a
// third more time per row-step than the 8×32 tile (prototype, one thread, kernels alone: x·W₁ᵀ's
// 208-column piece 182 → 150 µs). 3-row tiles were as fast there, but 2 rows divide the 8-row panel,
// so the panel's scan (which bails out early on dense panels), list and fallback stay as they are.
// Used for A stored m×k read in place only (x·W₁ᵀ: stage minima −17% in the mnist step). For Σdh⊗x
// (Aᵀ read in place, C stored transposed) they made the stage 17% slower and are not used (GEMM.swift).
//
// B is read as whole SIMD16 vectors at b + p·bStep + 16·v: the B rows of the tile must be contiguous
// (B read in place, or the chunk's B packed row-major, see `GEMM.Job.bRowMajor`). A value (r, p) is
// read at a[r·aRowStride + p·aStepStride] (A stored m×k in place: lda, 1). Same operation sequence per
// element as every other kernel: 0, then one FMA per listed step in order, then the store formula of
// `GEMM.update`.

extension GEMM {
    /// Rows of a pair tile, and the most SIMD16 vectors one call takes (2 × 13 accumulators + 2
    /// broadcasts + 1 B vector ≤ 32 registers; the compiler keeps them all in registers, checked in
    /// the assembly).
    static let pairRows = 2
    static let pairMaxVectors = 13

    /// A pair tile's width as a type: `panels` pairs of SIMD16 vectors and `tail` (0 or 1) more, so that
    /// the generic kernel is specialised and fully unrolled per width. (A flat array of up to 13
    /// vectors was not: from 11 vectors on, the accumulators stayed in memory, measured in the assembly.)
    struct PairTile<let panels: Int, let tail: Int> {}

    @inline(__always)
    static func pairKernel<let P: Int, let T: Int>(_: PairTile<P, T>.Type, _ count: Int, _ steps: UnsafePointer<Int32>,
                                                   _ a: UnsafePointer<Float>, _ aRowStride: Int, _ aStepStride: Int,
                                                   _ b: UnsafePointer<Float>, _ bStep: Int,
                                                   _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float) {
        typealias Pair = (SIMD16<Float>, SIMD16<Float>)
        var acc0 = InlineArray<P, Pair>(repeating: (SIMD16(), SIMD16()))
        var acc1 = InlineArray<P, Pair>(repeating: (SIMD16(), SIMD16()))
        var tail0 = InlineArray<T, SIMD16<Float>>(repeating: SIMD16())
        var tail1 = InlineArray<T, SIMD16<Float>>(repeating: SIMD16())
        let rb = UnsafeRawPointer(b)
        let bBytes = bStep &* 4
        var t = 0
        while t < count {
            let p = Int(steps[t])
            let pa = a + p &* aStepStride
            let a0 = SIMD16<Float>(repeating: pa[0]), a1 = SIMD16<Float>(repeating: pa[aRowStride])
            let pb = rb + p &* bBytes
            for q in 0..<P {
                let b0 = pb.loadUnaligned(fromByteOffset: 128 &* q, as: SIMD16<Float>.self)
                let b1 = pb.loadUnaligned(fromByteOffset: 128 &* q &+ 64, as: SIMD16<Float>.self)
                acc0[q].0 = acc0[q].0.addingProduct(a0, b0); acc1[q].0 = acc1[q].0.addingProduct(a1, b0)
                acc0[q].1 = acc0[q].1.addingProduct(a0, b1); acc1[q].1 = acc1[q].1.addingProduct(a1, b1)
            }
            for v in 0..<T {
                let bv = pb.loadUnaligned(fromByteOffset: 128 &* P &+ 64 &* v, as: SIMD16<Float>.self)
                tail0[v] = tail0[v].addingProduct(a0, bv); tail1[v] = tail1[v].addingProduct(a1, bv)
            }
            t &+= 1
        }
        let va = SIMD16<Float>(repeating: alpha), vb = SIMD16<Float>(repeating: beta)
        let mode = beta == 0 ? 0 : (beta == 1 ? 1 : 2)
        let row0 = UnsafeMutableRawPointer(c), row1 = UnsafeMutableRawPointer(c + ldc)
        for q in 0..<P {
            update(row0 + 128 &* q, acc0[q].0, va, vb, mode); update(row0 + (128 &* q &+ 64), acc0[q].1, va, vb, mode)
            update(row1 + 128 &* q, acc1[q].0, va, vb, mode); update(row1 + (128 &* q &+ 64), acc1[q].1, va, vb, mode)
        }
        for v in 0..<T {
            update(row0 + (128 &* P &+ 64 &* v), tail0[v], va, vb, mode)
            update(row1 + (128 &* P &+ 64 &* v), tail1[v], va, vb, mode)
        }
    }

    /// C[0..<2, 0..<16·vectors] = alpha · Σ over the listed steps of A[0..<2, p] ⊗ B[p, ·] + beta · C
    /// (1 ≤ vectors ≤ 13).
    @inline(never)
    static func kernelPairSparse(vectors: Int, _ count: Int, _ steps: UnsafePointer<Int32>,
                                 _ a: UnsafePointer<Float>, _ aRowStride: Int, _ aStepStride: Int,
                                 _ b: UnsafePointer<Float>, _ bStep: Int,
                                 _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float) {
        switch vectors {
        case 1: pairKernel(PairTile<0, 1>.self, count, steps, a, aRowStride, aStepStride, b, bStep, c, ldc, alpha, beta)
        case 2: pairKernel(PairTile<1, 0>.self, count, steps, a, aRowStride, aStepStride, b, bStep, c, ldc, alpha, beta)
        case 3: pairKernel(PairTile<1, 1>.self, count, steps, a, aRowStride, aStepStride, b, bStep, c, ldc, alpha, beta)
        case 4: pairKernel(PairTile<2, 0>.self, count, steps, a, aRowStride, aStepStride, b, bStep, c, ldc, alpha, beta)
        case 5: pairKernel(PairTile<2, 1>.self, count, steps, a, aRowStride, aStepStride, b, bStep, c, ldc, alpha, beta)
        case 6: pairKernel(PairTile<3, 0>.self, count, steps, a, aRowStride, aStepStride, b, bStep, c, ldc, alpha, beta)
        case 7: pairKernel(PairTile<3, 1>.self, count, steps, a, aRowStride, aStepStride, b, bStep, c, ldc, alpha, beta)
        case 8: pairKernel(PairTile<4, 0>.self, count, steps, a, aRowStride, aStepStride, b, bStep, c, ldc, alpha, beta)
        case 9: pairKernel(PairTile<4, 1>.self, count, steps, a, aRowStride, aStepStride, b, bStep, c, ldc, alpha, beta)
        case 10: pairKernel(PairTile<5, 0>.self, count, steps, a, aRowStride, aStepStride, b, bStep, c, ldc, alpha, beta)
        case 11: pairKernel(PairTile<5, 1>.self, count, steps, a, aRowStride, aStepStride, b, bStep, c, ldc, alpha, beta)
        case 12: pairKernel(PairTile<6, 0>.self, count, steps, a, aRowStride, aStepStride, b, bStep, c, ldc, alpha, beta)
        default: pairKernel(PairTile<6, 1>.self, count, steps, a, aRowStride, aStepStride, b, bStep, c, ldc, alpha, beta)
        }
    }

    /// The four 2-row lists of an 8-row panel: list g (rows 2g, 2g + 1) at `lists + g·stride`.
    struct PairLists {
        let lists: UnsafeMutablePointer<Int32>
        let stride: Int
        var counts: SIMD4<Int32> = .zero
        /// Sum of the four counts: the pair tiles' steps (each of 2 rows).
        var total: Int { Int(counts.wrappedSum()) }
        func list(_ g: Int) -> UnsafeMutablePointer<Int32> { lists + g &* stride }
    }

    /// Whether the pair tiles cost less than the 8-row tiles for a panel whose union list has
    /// `panelSteps` steps and whose pair lists `pairSteps` in all. Per row-step the pair tile took
    /// 1.32× (x·W₁ᵀ) to 1.58× (Σdh⊗x) the 8×32 tile's time in the prototype; 1.4 is used.
    @inline(__always)
    static func pairTilesPay(pairSteps: Int, panelSteps: Int) -> Bool {
        pairSteps * 2 * 7 < panelSteps * 8 * 5
    }

    /// The work of a panel's pair tiles in the unit of `multiply`'s stepCounts (k steps of the 8-row
    /// tile): row-steps × 1.4 / 8, as in `pairTilesPay`.
    @inline(__always)
    static func pairStepEquivalent(_ pairSteps: Int) -> Int32 {
        Int32((pairSteps * 2 * 7 + 20) / 40)
    }
}
