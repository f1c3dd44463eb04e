// GEMM micro-kernels: one fully unrolled function per tile shape, all written in the same mechanical
// form (accumulators as named locals so they stay in registers). Keep the variants in step when editing.
//
// A kernel computes one tile C[0..<R, 0..<W] = alpha · Σ_p Ã[·, p] ⊗ B̃[p, ·] + beta · C over one k-block.
// Ã[i, p] is read at a[p·aStep + (i / 8)·aStride + i % 8] and B̃[p, j] at b[p·bStep + j]: packed panels
// (aStep 8, aStride 8·kc; bStep W), or straight from a suitably laid out operand (Aᵀ stored k×m:
// aStep lda, aStride 8; B stored k×n: bStep ldb), see GEMM.Job.
// Each k step loads the B row into W/L vector registers, broadcasts each A value and does one fused
// multiply-add (`addingProduct`, vfmadd231ps) per accumulator. Every accumulator lane therefore sees
// the same operation sequence (0, then fma for p = 0, 1, …, kc-1) whatever kernel or tile position
// produced it, which is what makes results independent of blocking across the output and of threads.
//
//   kernel8x32:          the main tile, 16 SIMD16 accumulators (2 B vectors × 8 broadcast rows)
//   kernel{8,16,24}x16:  16-column panels at the right edge of C (e.g. n = 400 = 12·32 + 16)
//   kernel{8,16,24}x8:   8-column panels at the right edge (e.g. n = 20 = 16 + 8); SIMD8 runs at
//                        the same flops per lane as SIMD16 on Zen 4 (two 256-bit FMA pipes).
// The narrow kernels take up to three consecutive A panels to keep 8–24 accumulators busy.
//   kernelRows8x{32,16,8}: tiles reading A stored m×k in place (8 row pointers) instead of a packed
//                        (transposed) panel: A is never packed when its leading dimension allows.
//   kernelRows8x32Sparse: the same over a list of k steps (those where A's 8 rows are not all 0).
//   kernelRows8x16Sparse, kernelRows8x8Sparse: likewise for a 16- or 8-column tail panel, over the same list.
//   kernel8x32Sparse:    kernel8x32 over such a list (A read with a step, e.g. Aᵀ stored k×m in place).

extension GEMM {
    /// The one store formula for a vector of results s = alpha·acc, for every width the kernels use
    /// (SIMD16 tiles, SIMD8 tails, the 4-float columns of a quad tile's transposed store):
    /// mode 0 (beta == 0): C = s, C never read; mode 1 (beta == 1): C = C + s; mode 2: C = s + beta·C.
    @inline(__always)
    static func update<V: SIMD>(_ p: UnsafeMutableRawPointer, _ acc: V, _ va: V, _ vb: V, _ mode: Int) where V.Scalar == Float {
        let s = va * acc
        switch mode {
        case 0: p.storeBytes(of: s, as: V.self)
        case 1: p.storeBytes(of: p.loadUnaligned(as: V.self) + s, as: V.self)
        default: p.storeBytes(of: s + vb * p.loadUnaligned(as: V.self), as: V.self)
        }
    }

    /// 8×32 tile, 16 SIMD16<Float> accumulators.
    @inline(never)
    static func kernel8x32(_ kc: Int, _ a: UnsafePointer<Float>, _ aStep: Int, _ aStride: Int,
                       _ b: UnsafePointer<Float>, _ bStep: Int,
                       _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float) {
        var c0_0 = SIMD16<Float>(); var c0_1 = SIMD16<Float>(); var c1_0 = SIMD16<Float>(); var c1_1 = SIMD16<Float>();
        var c2_0 = SIMD16<Float>(); var c2_1 = SIMD16<Float>(); var c3_0 = SIMD16<Float>(); var c3_1 = SIMD16<Float>();
        var c4_0 = SIMD16<Float>(); var c4_1 = SIMD16<Float>(); var c5_0 = SIMD16<Float>(); var c5_1 = SIMD16<Float>();
        var c6_0 = SIMD16<Float>(); var c6_1 = SIMD16<Float>(); var c7_0 = SIMD16<Float>(); var c7_1 = SIMD16<Float>();
        var pa = a
        var pb = UnsafeRawPointer(b)
        let bBytes = bStep &* 4
        var p = 0
        while p < kc {
            let b0 = pb.loadUnaligned(fromByteOffset: 0, as: SIMD16<Float>.self)
            let b1 = pb.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
            let a0 = SIMD16<Float>(repeating: pa[0]); c0_0 = c0_0.addingProduct(a0, b0); c0_1 = c0_1.addingProduct(a0, b1)
            let a1 = SIMD16<Float>(repeating: pa[1]); c1_0 = c1_0.addingProduct(a1, b0); c1_1 = c1_1.addingProduct(a1, b1)
            let a2 = SIMD16<Float>(repeating: pa[2]); c2_0 = c2_0.addingProduct(a2, b0); c2_1 = c2_1.addingProduct(a2, b1)
            let a3 = SIMD16<Float>(repeating: pa[3]); c3_0 = c3_0.addingProduct(a3, b0); c3_1 = c3_1.addingProduct(a3, b1)
            let a4 = SIMD16<Float>(repeating: pa[4]); c4_0 = c4_0.addingProduct(a4, b0); c4_1 = c4_1.addingProduct(a4, b1)
            let a5 = SIMD16<Float>(repeating: pa[5]); c5_0 = c5_0.addingProduct(a5, b0); c5_1 = c5_1.addingProduct(a5, b1)
            let a6 = SIMD16<Float>(repeating: pa[6]); c6_0 = c6_0.addingProduct(a6, b0); c6_1 = c6_1.addingProduct(a6, b1)
            let a7 = SIMD16<Float>(repeating: pa[7]); c7_0 = c7_0.addingProduct(a7, b0); c7_1 = c7_1.addingProduct(a7, b1)
            pa += aStep
            pb += bBytes
            p &+= 1
        }
        let va = SIMD16<Float>(repeating: alpha), vb = SIMD16<Float>(repeating: beta)
        let mode = beta == 0 ? 0 : (beta == 1 ? 1 : 2)
        var row = UnsafeMutableRawPointer(c)
        let rs = ldc &* 4
        update(row, c0_0, va, vb, mode); update(row + 64, c0_1, va, vb, mode); row += rs
        update(row, c1_0, va, vb, mode); update(row + 64, c1_1, va, vb, mode); row += rs
        update(row, c2_0, va, vb, mode); update(row + 64, c2_1, va, vb, mode); row += rs
        update(row, c3_0, va, vb, mode); update(row + 64, c3_1, va, vb, mode); row += rs
        update(row, c4_0, va, vb, mode); update(row + 64, c4_1, va, vb, mode); row += rs
        update(row, c5_0, va, vb, mode); update(row + 64, c5_1, va, vb, mode); row += rs
        update(row, c6_0, va, vb, mode); update(row + 64, c6_1, va, vb, mode); row += rs
        update(row, c7_0, va, vb, mode); update(row + 64, c7_1, va, vb, mode)
    }

    /// 8×16 tile, 8 SIMD16<Float> accumulators.
    @inline(never)
    static func kernel8x16(_ kc: Int, _ a: UnsafePointer<Float>, _ aStep: Int, _ aStride: Int,
                       _ b: UnsafePointer<Float>, _ bStep: Int,
                       _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float) {
        var c0_0 = SIMD16<Float>(); var c1_0 = SIMD16<Float>(); var c2_0 = SIMD16<Float>(); var c3_0 = SIMD16<Float>();
        var c4_0 = SIMD16<Float>(); var c5_0 = SIMD16<Float>(); var c6_0 = SIMD16<Float>(); var c7_0 = SIMD16<Float>();
        var pa = a
        var pb = UnsafeRawPointer(b)
        let bBytes = bStep &* 4
        var p = 0
        while p < kc {
            let b0 = pb.loadUnaligned(fromByteOffset: 0, as: SIMD16<Float>.self)
            let a0 = SIMD16<Float>(repeating: pa[0]); c0_0 = c0_0.addingProduct(a0, b0)
            let a1 = SIMD16<Float>(repeating: pa[1]); c1_0 = c1_0.addingProduct(a1, b0)
            let a2 = SIMD16<Float>(repeating: pa[2]); c2_0 = c2_0.addingProduct(a2, b0)
            let a3 = SIMD16<Float>(repeating: pa[3]); c3_0 = c3_0.addingProduct(a3, b0)
            let a4 = SIMD16<Float>(repeating: pa[4]); c4_0 = c4_0.addingProduct(a4, b0)
            let a5 = SIMD16<Float>(repeating: pa[5]); c5_0 = c5_0.addingProduct(a5, b0)
            let a6 = SIMD16<Float>(repeating: pa[6]); c6_0 = c6_0.addingProduct(a6, b0)
            let a7 = SIMD16<Float>(repeating: pa[7]); c7_0 = c7_0.addingProduct(a7, b0)
            pa += aStep
            pb += bBytes
            p &+= 1
        }
        let va = SIMD16<Float>(repeating: alpha), vb = SIMD16<Float>(repeating: beta)
        let mode = beta == 0 ? 0 : (beta == 1 ? 1 : 2)
        var row = UnsafeMutableRawPointer(c)
        let rs = ldc &* 4
        update(row, c0_0, va, vb, mode); row += rs
        update(row, c1_0, va, vb, mode); row += rs
        update(row, c2_0, va, vb, mode); row += rs
        update(row, c3_0, va, vb, mode); row += rs
        update(row, c4_0, va, vb, mode); row += rs
        update(row, c5_0, va, vb, mode); row += rs
        update(row, c6_0, va, vb, mode); row += rs
        update(row, c7_0, va, vb, mode)
    }

    /// 16×16 tile, 16 SIMD16<Float> accumulators; rows 8q..8q+7 of A are read from `a + q·aStride`.
    @inline(never)
    static func kernel16x16(_ kc: Int, _ a: UnsafePointer<Float>, _ aStep: Int, _ aStride: Int,
                       _ b: UnsafePointer<Float>, _ bStep: Int,
                       _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float) {
        var c0_0 = SIMD16<Float>(); var c1_0 = SIMD16<Float>(); var c2_0 = SIMD16<Float>(); var c3_0 = SIMD16<Float>();
        var c4_0 = SIMD16<Float>(); var c5_0 = SIMD16<Float>(); var c6_0 = SIMD16<Float>(); var c7_0 = SIMD16<Float>();
        var c8_0 = SIMD16<Float>(); var c9_0 = SIMD16<Float>(); var c10_0 = SIMD16<Float>(); var c11_0 = SIMD16<Float>();
        var c12_0 = SIMD16<Float>(); var c13_0 = SIMD16<Float>(); var c14_0 = SIMD16<Float>(); var c15_0 = SIMD16<Float>();
        var pa = a
        let s1 = aStride
        var pb = UnsafeRawPointer(b)
        let bBytes = bStep &* 4
        var p = 0
        while p < kc {
            let b0 = pb.loadUnaligned(fromByteOffset: 0, as: SIMD16<Float>.self)
            let a0 = SIMD16<Float>(repeating: pa[0]); c0_0 = c0_0.addingProduct(a0, b0)
            let a1 = SIMD16<Float>(repeating: pa[1]); c1_0 = c1_0.addingProduct(a1, b0)
            let a2 = SIMD16<Float>(repeating: pa[2]); c2_0 = c2_0.addingProduct(a2, b0)
            let a3 = SIMD16<Float>(repeating: pa[3]); c3_0 = c3_0.addingProduct(a3, b0)
            let a4 = SIMD16<Float>(repeating: pa[4]); c4_0 = c4_0.addingProduct(a4, b0)
            let a5 = SIMD16<Float>(repeating: pa[5]); c5_0 = c5_0.addingProduct(a5, b0)
            let a6 = SIMD16<Float>(repeating: pa[6]); c6_0 = c6_0.addingProduct(a6, b0)
            let a7 = SIMD16<Float>(repeating: pa[7]); c7_0 = c7_0.addingProduct(a7, b0)
            let a8 = SIMD16<Float>(repeating: pa[s1 &+ 0]); c8_0 = c8_0.addingProduct(a8, b0)
            let a9 = SIMD16<Float>(repeating: pa[s1 &+ 1]); c9_0 = c9_0.addingProduct(a9, b0)
            let a10 = SIMD16<Float>(repeating: pa[s1 &+ 2]); c10_0 = c10_0.addingProduct(a10, b0)
            let a11 = SIMD16<Float>(repeating: pa[s1 &+ 3]); c11_0 = c11_0.addingProduct(a11, b0)
            let a12 = SIMD16<Float>(repeating: pa[s1 &+ 4]); c12_0 = c12_0.addingProduct(a12, b0)
            let a13 = SIMD16<Float>(repeating: pa[s1 &+ 5]); c13_0 = c13_0.addingProduct(a13, b0)
            let a14 = SIMD16<Float>(repeating: pa[s1 &+ 6]); c14_0 = c14_0.addingProduct(a14, b0)
            let a15 = SIMD16<Float>(repeating: pa[s1 &+ 7]); c15_0 = c15_0.addingProduct(a15, b0)
            pa += aStep
            pb += bBytes
            p &+= 1
        }
        let va = SIMD16<Float>(repeating: alpha), vb = SIMD16<Float>(repeating: beta)
        let mode = beta == 0 ? 0 : (beta == 1 ? 1 : 2)
        var row = UnsafeMutableRawPointer(c)
        let rs = ldc &* 4
        update(row, c0_0, va, vb, mode); row += rs
        update(row, c1_0, va, vb, mode); row += rs
        update(row, c2_0, va, vb, mode); row += rs
        update(row, c3_0, va, vb, mode); row += rs
        update(row, c4_0, va, vb, mode); row += rs
        update(row, c5_0, va, vb, mode); row += rs
        update(row, c6_0, va, vb, mode); row += rs
        update(row, c7_0, va, vb, mode); row += rs
        update(row, c8_0, va, vb, mode); row += rs
        update(row, c9_0, va, vb, mode); row += rs
        update(row, c10_0, va, vb, mode); row += rs
        update(row, c11_0, va, vb, mode); row += rs
        update(row, c12_0, va, vb, mode); row += rs
        update(row, c13_0, va, vb, mode); row += rs
        update(row, c14_0, va, vb, mode); row += rs
        update(row, c15_0, va, vb, mode)
    }

    /// 24×16 tile, 24 SIMD16<Float> accumulators; rows 8q..8q+7 of A are read from `a + q·aStride`.
    @inline(never)
    static func kernel24x16(_ kc: Int, _ a: UnsafePointer<Float>, _ aStep: Int, _ aStride: Int,
                       _ b: UnsafePointer<Float>, _ bStep: Int,
                       _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float) {
        var c0_0 = SIMD16<Float>(); var c1_0 = SIMD16<Float>(); var c2_0 = SIMD16<Float>(); var c3_0 = SIMD16<Float>();
        var c4_0 = SIMD16<Float>(); var c5_0 = SIMD16<Float>(); var c6_0 = SIMD16<Float>(); var c7_0 = SIMD16<Float>();
        var c8_0 = SIMD16<Float>(); var c9_0 = SIMD16<Float>(); var c10_0 = SIMD16<Float>(); var c11_0 = SIMD16<Float>();
        var c12_0 = SIMD16<Float>(); var c13_0 = SIMD16<Float>(); var c14_0 = SIMD16<Float>(); var c15_0 = SIMD16<Float>();
        var c16_0 = SIMD16<Float>(); var c17_0 = SIMD16<Float>(); var c18_0 = SIMD16<Float>(); var c19_0 = SIMD16<Float>();
        var c20_0 = SIMD16<Float>(); var c21_0 = SIMD16<Float>(); var c22_0 = SIMD16<Float>(); var c23_0 = SIMD16<Float>();
        var pa = a
        let s1 = aStride, s2 = 2 &* aStride
        var pb = UnsafeRawPointer(b)
        let bBytes = bStep &* 4
        var p = 0
        while p < kc {
            let b0 = pb.loadUnaligned(fromByteOffset: 0, as: SIMD16<Float>.self)
            let a0 = SIMD16<Float>(repeating: pa[0]); c0_0 = c0_0.addingProduct(a0, b0)
            let a1 = SIMD16<Float>(repeating: pa[1]); c1_0 = c1_0.addingProduct(a1, b0)
            let a2 = SIMD16<Float>(repeating: pa[2]); c2_0 = c2_0.addingProduct(a2, b0)
            let a3 = SIMD16<Float>(repeating: pa[3]); c3_0 = c3_0.addingProduct(a3, b0)
            let a4 = SIMD16<Float>(repeating: pa[4]); c4_0 = c4_0.addingProduct(a4, b0)
            let a5 = SIMD16<Float>(repeating: pa[5]); c5_0 = c5_0.addingProduct(a5, b0)
            let a6 = SIMD16<Float>(repeating: pa[6]); c6_0 = c6_0.addingProduct(a6, b0)
            let a7 = SIMD16<Float>(repeating: pa[7]); c7_0 = c7_0.addingProduct(a7, b0)
            let a8 = SIMD16<Float>(repeating: pa[s1 &+ 0]); c8_0 = c8_0.addingProduct(a8, b0)
            let a9 = SIMD16<Float>(repeating: pa[s1 &+ 1]); c9_0 = c9_0.addingProduct(a9, b0)
            let a10 = SIMD16<Float>(repeating: pa[s1 &+ 2]); c10_0 = c10_0.addingProduct(a10, b0)
            let a11 = SIMD16<Float>(repeating: pa[s1 &+ 3]); c11_0 = c11_0.addingProduct(a11, b0)
            let a12 = SIMD16<Float>(repeating: pa[s1 &+ 4]); c12_0 = c12_0.addingProduct(a12, b0)
            let a13 = SIMD16<Float>(repeating: pa[s1 &+ 5]); c13_0 = c13_0.addingProduct(a13, b0)
            let a14 = SIMD16<Float>(repeating: pa[s1 &+ 6]); c14_0 = c14_0.addingProduct(a14, b0)
            let a15 = SIMD16<Float>(repeating: pa[s1 &+ 7]); c15_0 = c15_0.addingProduct(a15, b0)
            let a16 = SIMD16<Float>(repeating: pa[s2 &+ 0]); c16_0 = c16_0.addingProduct(a16, b0)
            let a17 = SIMD16<Float>(repeating: pa[s2 &+ 1]); c17_0 = c17_0.addingProduct(a17, b0)
            let a18 = SIMD16<Float>(repeating: pa[s2 &+ 2]); c18_0 = c18_0.addingProduct(a18, b0)
            let a19 = SIMD16<Float>(repeating: pa[s2 &+ 3]); c19_0 = c19_0.addingProduct(a19, b0)
            let a20 = SIMD16<Float>(repeating: pa[s2 &+ 4]); c20_0 = c20_0.addingProduct(a20, b0)
            let a21 = SIMD16<Float>(repeating: pa[s2 &+ 5]); c21_0 = c21_0.addingProduct(a21, b0)
            let a22 = SIMD16<Float>(repeating: pa[s2 &+ 6]); c22_0 = c22_0.addingProduct(a22, b0)
            let a23 = SIMD16<Float>(repeating: pa[s2 &+ 7]); c23_0 = c23_0.addingProduct(a23, b0)
            pa += aStep
            pb += bBytes
            p &+= 1
        }
        let va = SIMD16<Float>(repeating: alpha), vb = SIMD16<Float>(repeating: beta)
        let mode = beta == 0 ? 0 : (beta == 1 ? 1 : 2)
        var row = UnsafeMutableRawPointer(c)
        let rs = ldc &* 4
        update(row, c0_0, va, vb, mode); row += rs
        update(row, c1_0, va, vb, mode); row += rs
        update(row, c2_0, va, vb, mode); row += rs
        update(row, c3_0, va, vb, mode); row += rs
        update(row, c4_0, va, vb, mode); row += rs
        update(row, c5_0, va, vb, mode); row += rs
        update(row, c6_0, va, vb, mode); row += rs
        update(row, c7_0, va, vb, mode); row += rs
        update(row, c8_0, va, vb, mode); row += rs
        update(row, c9_0, va, vb, mode); row += rs
        update(row, c10_0, va, vb, mode); row += rs
        update(row, c11_0, va, vb, mode); row += rs
        update(row, c12_0, va, vb, mode); row += rs
        update(row, c13_0, va, vb, mode); row += rs
        update(row, c14_0, va, vb, mode); row += rs
        update(row, c15_0, va, vb, mode); row += rs
        update(row, c16_0, va, vb, mode); row += rs
        update(row, c17_0, va, vb, mode); row += rs
        update(row, c18_0, va, vb, mode); row += rs
        update(row, c19_0, va, vb, mode); row += rs
        update(row, c20_0, va, vb, mode); row += rs
        update(row, c21_0, va, vb, mode); row += rs
        update(row, c22_0, va, vb, mode); row += rs
        update(row, c23_0, va, vb, mode)
    }

    /// 8×8 tile, 8 SIMD8<Float> accumulators.
    @inline(never)
    static func kernel8x8(_ kc: Int, _ a: UnsafePointer<Float>, _ aStep: Int, _ aStride: Int,
                       _ b: UnsafePointer<Float>, _ bStep: Int,
                       _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float) {
        var c0_0 = SIMD8<Float>(); var c1_0 = SIMD8<Float>(); var c2_0 = SIMD8<Float>(); var c3_0 = SIMD8<Float>();
        var c4_0 = SIMD8<Float>(); var c5_0 = SIMD8<Float>(); var c6_0 = SIMD8<Float>(); var c7_0 = SIMD8<Float>();
        var pa = a
        var pb = UnsafeRawPointer(b)
        let bBytes = bStep &* 4
        var p = 0
        while p < kc {
            let b0 = pb.loadUnaligned(fromByteOffset: 0, as: SIMD8<Float>.self)
            let a0 = SIMD8<Float>(repeating: pa[0]); c0_0 = c0_0.addingProduct(a0, b0)
            let a1 = SIMD8<Float>(repeating: pa[1]); c1_0 = c1_0.addingProduct(a1, b0)
            let a2 = SIMD8<Float>(repeating: pa[2]); c2_0 = c2_0.addingProduct(a2, b0)
            let a3 = SIMD8<Float>(repeating: pa[3]); c3_0 = c3_0.addingProduct(a3, b0)
            let a4 = SIMD8<Float>(repeating: pa[4]); c4_0 = c4_0.addingProduct(a4, b0)
            let a5 = SIMD8<Float>(repeating: pa[5]); c5_0 = c5_0.addingProduct(a5, b0)
            let a6 = SIMD8<Float>(repeating: pa[6]); c6_0 = c6_0.addingProduct(a6, b0)
            let a7 = SIMD8<Float>(repeating: pa[7]); c7_0 = c7_0.addingProduct(a7, b0)
            pa += aStep
            pb += bBytes
            p &+= 1
        }
        let va = SIMD8<Float>(repeating: alpha), vb = SIMD8<Float>(repeating: beta)
        let mode = beta == 0 ? 0 : (beta == 1 ? 1 : 2)
        var row = UnsafeMutableRawPointer(c)
        let rs = ldc &* 4
        update(row, c0_0, va, vb, mode); row += rs
        update(row, c1_0, va, vb, mode); row += rs
        update(row, c2_0, va, vb, mode); row += rs
        update(row, c3_0, va, vb, mode); row += rs
        update(row, c4_0, va, vb, mode); row += rs
        update(row, c5_0, va, vb, mode); row += rs
        update(row, c6_0, va, vb, mode); row += rs
        update(row, c7_0, va, vb, mode)
    }

    /// 16×8 tile, 16 SIMD8<Float> accumulators; rows 8q..8q+7 of A are read from `a + q·aStride`.
    @inline(never)
    static func kernel16x8(_ kc: Int, _ a: UnsafePointer<Float>, _ aStep: Int, _ aStride: Int,
                       _ b: UnsafePointer<Float>, _ bStep: Int,
                       _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float) {
        var c0_0 = SIMD8<Float>(); var c1_0 = SIMD8<Float>(); var c2_0 = SIMD8<Float>(); var c3_0 = SIMD8<Float>();
        var c4_0 = SIMD8<Float>(); var c5_0 = SIMD8<Float>(); var c6_0 = SIMD8<Float>(); var c7_0 = SIMD8<Float>();
        var c8_0 = SIMD8<Float>(); var c9_0 = SIMD8<Float>(); var c10_0 = SIMD8<Float>(); var c11_0 = SIMD8<Float>();
        var c12_0 = SIMD8<Float>(); var c13_0 = SIMD8<Float>(); var c14_0 = SIMD8<Float>(); var c15_0 = SIMD8<Float>();
        var pa = a
        let s1 = aStride
        var pb = UnsafeRawPointer(b)
        let bBytes = bStep &* 4
        var p = 0
        while p < kc {
            let b0 = pb.loadUnaligned(fromByteOffset: 0, as: SIMD8<Float>.self)
            let a0 = SIMD8<Float>(repeating: pa[0]); c0_0 = c0_0.addingProduct(a0, b0)
            let a1 = SIMD8<Float>(repeating: pa[1]); c1_0 = c1_0.addingProduct(a1, b0)
            let a2 = SIMD8<Float>(repeating: pa[2]); c2_0 = c2_0.addingProduct(a2, b0)
            let a3 = SIMD8<Float>(repeating: pa[3]); c3_0 = c3_0.addingProduct(a3, b0)
            let a4 = SIMD8<Float>(repeating: pa[4]); c4_0 = c4_0.addingProduct(a4, b0)
            let a5 = SIMD8<Float>(repeating: pa[5]); c5_0 = c5_0.addingProduct(a5, b0)
            let a6 = SIMD8<Float>(repeating: pa[6]); c6_0 = c6_0.addingProduct(a6, b0)
            let a7 = SIMD8<Float>(repeating: pa[7]); c7_0 = c7_0.addingProduct(a7, b0)
            let a8 = SIMD8<Float>(repeating: pa[s1 &+ 0]); c8_0 = c8_0.addingProduct(a8, b0)
            let a9 = SIMD8<Float>(repeating: pa[s1 &+ 1]); c9_0 = c9_0.addingProduct(a9, b0)
            let a10 = SIMD8<Float>(repeating: pa[s1 &+ 2]); c10_0 = c10_0.addingProduct(a10, b0)
            let a11 = SIMD8<Float>(repeating: pa[s1 &+ 3]); c11_0 = c11_0.addingProduct(a11, b0)
            let a12 = SIMD8<Float>(repeating: pa[s1 &+ 4]); c12_0 = c12_0.addingProduct(a12, b0)
            let a13 = SIMD8<Float>(repeating: pa[s1 &+ 5]); c13_0 = c13_0.addingProduct(a13, b0)
            let a14 = SIMD8<Float>(repeating: pa[s1 &+ 6]); c14_0 = c14_0.addingProduct(a14, b0)
            let a15 = SIMD8<Float>(repeating: pa[s1 &+ 7]); c15_0 = c15_0.addingProduct(a15, b0)
            pa += aStep
            pb += bBytes
            p &+= 1
        }
        let va = SIMD8<Float>(repeating: alpha), vb = SIMD8<Float>(repeating: beta)
        let mode = beta == 0 ? 0 : (beta == 1 ? 1 : 2)
        var row = UnsafeMutableRawPointer(c)
        let rs = ldc &* 4
        update(row, c0_0, va, vb, mode); row += rs
        update(row, c1_0, va, vb, mode); row += rs
        update(row, c2_0, va, vb, mode); row += rs
        update(row, c3_0, va, vb, mode); row += rs
        update(row, c4_0, va, vb, mode); row += rs
        update(row, c5_0, va, vb, mode); row += rs
        update(row, c6_0, va, vb, mode); row += rs
        update(row, c7_0, va, vb, mode); row += rs
        update(row, c8_0, va, vb, mode); row += rs
        update(row, c9_0, va, vb, mode); row += rs
        update(row, c10_0, va, vb, mode); row += rs
        update(row, c11_0, va, vb, mode); row += rs
        update(row, c12_0, va, vb, mode); row += rs
        update(row, c13_0, va, vb, mode); row += rs
        update(row, c14_0, va, vb, mode); row += rs
        update(row, c15_0, va, vb, mode)
    }

    /// 24×8 tile, 24 SIMD8<Float> accumulators; rows 8q..8q+7 of A are read from `a + q·aStride`.
    @inline(never)
    static func kernel24x8(_ kc: Int, _ a: UnsafePointer<Float>, _ aStep: Int, _ aStride: Int,
                       _ b: UnsafePointer<Float>, _ bStep: Int,
                       _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float) {
        var c0_0 = SIMD8<Float>(); var c1_0 = SIMD8<Float>(); var c2_0 = SIMD8<Float>(); var c3_0 = SIMD8<Float>();
        var c4_0 = SIMD8<Float>(); var c5_0 = SIMD8<Float>(); var c6_0 = SIMD8<Float>(); var c7_0 = SIMD8<Float>();
        var c8_0 = SIMD8<Float>(); var c9_0 = SIMD8<Float>(); var c10_0 = SIMD8<Float>(); var c11_0 = SIMD8<Float>();
        var c12_0 = SIMD8<Float>(); var c13_0 = SIMD8<Float>(); var c14_0 = SIMD8<Float>(); var c15_0 = SIMD8<Float>();
        var c16_0 = SIMD8<Float>(); var c17_0 = SIMD8<Float>(); var c18_0 = SIMD8<Float>(); var c19_0 = SIMD8<Float>();
        var c20_0 = SIMD8<Float>(); var c21_0 = SIMD8<Float>(); var c22_0 = SIMD8<Float>(); var c23_0 = SIMD8<Float>();
        var pa = a
        let s1 = aStride, s2 = 2 &* aStride
        var pb = UnsafeRawPointer(b)
        let bBytes = bStep &* 4
        var p = 0
        while p < kc {
            let b0 = pb.loadUnaligned(fromByteOffset: 0, as: SIMD8<Float>.self)
            let a0 = SIMD8<Float>(repeating: pa[0]); c0_0 = c0_0.addingProduct(a0, b0)
            let a1 = SIMD8<Float>(repeating: pa[1]); c1_0 = c1_0.addingProduct(a1, b0)
            let a2 = SIMD8<Float>(repeating: pa[2]); c2_0 = c2_0.addingProduct(a2, b0)
            let a3 = SIMD8<Float>(repeating: pa[3]); c3_0 = c3_0.addingProduct(a3, b0)
            let a4 = SIMD8<Float>(repeating: pa[4]); c4_0 = c4_0.addingProduct(a4, b0)
            let a5 = SIMD8<Float>(repeating: pa[5]); c5_0 = c5_0.addingProduct(a5, b0)
            let a6 = SIMD8<Float>(repeating: pa[6]); c6_0 = c6_0.addingProduct(a6, b0)
            let a7 = SIMD8<Float>(repeating: pa[7]); c7_0 = c7_0.addingProduct(a7, b0)
            let a8 = SIMD8<Float>(repeating: pa[s1 &+ 0]); c8_0 = c8_0.addingProduct(a8, b0)
            let a9 = SIMD8<Float>(repeating: pa[s1 &+ 1]); c9_0 = c9_0.addingProduct(a9, b0)
            let a10 = SIMD8<Float>(repeating: pa[s1 &+ 2]); c10_0 = c10_0.addingProduct(a10, b0)
            let a11 = SIMD8<Float>(repeating: pa[s1 &+ 3]); c11_0 = c11_0.addingProduct(a11, b0)
            let a12 = SIMD8<Float>(repeating: pa[s1 &+ 4]); c12_0 = c12_0.addingProduct(a12, b0)
            let a13 = SIMD8<Float>(repeating: pa[s1 &+ 5]); c13_0 = c13_0.addingProduct(a13, b0)
            let a14 = SIMD8<Float>(repeating: pa[s1 &+ 6]); c14_0 = c14_0.addingProduct(a14, b0)
            let a15 = SIMD8<Float>(repeating: pa[s1 &+ 7]); c15_0 = c15_0.addingProduct(a15, b0)
            let a16 = SIMD8<Float>(repeating: pa[s2 &+ 0]); c16_0 = c16_0.addingProduct(a16, b0)
            let a17 = SIMD8<Float>(repeating: pa[s2 &+ 1]); c17_0 = c17_0.addingProduct(a17, b0)
            let a18 = SIMD8<Float>(repeating: pa[s2 &+ 2]); c18_0 = c18_0.addingProduct(a18, b0)
            let a19 = SIMD8<Float>(repeating: pa[s2 &+ 3]); c19_0 = c19_0.addingProduct(a19, b0)
            let a20 = SIMD8<Float>(repeating: pa[s2 &+ 4]); c20_0 = c20_0.addingProduct(a20, b0)
            let a21 = SIMD8<Float>(repeating: pa[s2 &+ 5]); c21_0 = c21_0.addingProduct(a21, b0)
            let a22 = SIMD8<Float>(repeating: pa[s2 &+ 6]); c22_0 = c22_0.addingProduct(a22, b0)
            let a23 = SIMD8<Float>(repeating: pa[s2 &+ 7]); c23_0 = c23_0.addingProduct(a23, b0)
            pa += aStep
            pb += bBytes
            p &+= 1
        }
        let va = SIMD8<Float>(repeating: alpha), vb = SIMD8<Float>(repeating: beta)
        let mode = beta == 0 ? 0 : (beta == 1 ? 1 : 2)
        var row = UnsafeMutableRawPointer(c)
        let rs = ldc &* 4
        update(row, c0_0, va, vb, mode); row += rs
        update(row, c1_0, va, vb, mode); row += rs
        update(row, c2_0, va, vb, mode); row += rs
        update(row, c3_0, va, vb, mode); row += rs
        update(row, c4_0, va, vb, mode); row += rs
        update(row, c5_0, va, vb, mode); row += rs
        update(row, c6_0, va, vb, mode); row += rs
        update(row, c7_0, va, vb, mode); row += rs
        update(row, c8_0, va, vb, mode); row += rs
        update(row, c9_0, va, vb, mode); row += rs
        update(row, c10_0, va, vb, mode); row += rs
        update(row, c11_0, va, vb, mode); row += rs
        update(row, c12_0, va, vb, mode); row += rs
        update(row, c13_0, va, vb, mode); row += rs
        update(row, c14_0, va, vb, mode); row += rs
        update(row, c15_0, va, vb, mode); row += rs
        update(row, c16_0, va, vb, mode); row += rs
        update(row, c17_0, va, vb, mode); row += rs
        update(row, c18_0, va, vb, mode); row += rs
        update(row, c19_0, va, vb, mode); row += rs
        update(row, c20_0, va, vb, mode); row += rs
        update(row, c21_0, va, vb, mode); row += rs
        update(row, c22_0, va, vb, mode); row += rs
        update(row, c23_0, va, vb, mode)
    }

    /// 8×32 tile reading A in place from 8 rows of A stored m×k (row i at a + i·lda), 16 SIMD16<Float>
    /// accumulators: the main tile without packing A (a transpose that every column piece of a split
    /// product would repeat).
    @inline(never)
    static func kernelRows8x32(_ kc: Int, _ a: UnsafePointer<Float>, _ lda: Int,
                       _ b: UnsafePointer<Float>, _ bStep: Int,
                       _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float) {
        var c0_0 = SIMD16<Float>(); var c0_1 = SIMD16<Float>(); var c1_0 = SIMD16<Float>(); var c1_1 = SIMD16<Float>();
        var c2_0 = SIMD16<Float>(); var c2_1 = SIMD16<Float>(); var c3_0 = SIMD16<Float>(); var c3_1 = SIMD16<Float>();
        var c4_0 = SIMD16<Float>(); var c4_1 = SIMD16<Float>(); var c5_0 = SIMD16<Float>(); var c5_1 = SIMD16<Float>();
        var c6_0 = SIMD16<Float>(); var c6_1 = SIMD16<Float>(); var c7_0 = SIMD16<Float>(); var c7_1 = SIMD16<Float>();
        let r0 = a, r1 = a + lda, r2 = a + 2 &* lda, r3 = a + 3 &* lda
        let r4 = a + 4 &* lda, r5 = a + 5 &* lda, r6 = a + 6 &* lda, r7 = a + 7 &* lda
        var pb = UnsafeRawPointer(b)
        let bBytes = bStep &* 4
        var p = 0
        while p < kc {
            let b0 = pb.loadUnaligned(fromByteOffset: 0, as: SIMD16<Float>.self)
            let b1 = pb.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
            let a0 = SIMD16<Float>(repeating: r0[p]); c0_0 = c0_0.addingProduct(a0, b0); c0_1 = c0_1.addingProduct(a0, b1)
            let a1 = SIMD16<Float>(repeating: r1[p]); c1_0 = c1_0.addingProduct(a1, b0); c1_1 = c1_1.addingProduct(a1, b1)
            let a2 = SIMD16<Float>(repeating: r2[p]); c2_0 = c2_0.addingProduct(a2, b0); c2_1 = c2_1.addingProduct(a2, b1)
            let a3 = SIMD16<Float>(repeating: r3[p]); c3_0 = c3_0.addingProduct(a3, b0); c3_1 = c3_1.addingProduct(a3, b1)
            let a4 = SIMD16<Float>(repeating: r4[p]); c4_0 = c4_0.addingProduct(a4, b0); c4_1 = c4_1.addingProduct(a4, b1)
            let a5 = SIMD16<Float>(repeating: r5[p]); c5_0 = c5_0.addingProduct(a5, b0); c5_1 = c5_1.addingProduct(a5, b1)
            let a6 = SIMD16<Float>(repeating: r6[p]); c6_0 = c6_0.addingProduct(a6, b0); c6_1 = c6_1.addingProduct(a6, b1)
            let a7 = SIMD16<Float>(repeating: r7[p]); c7_0 = c7_0.addingProduct(a7, b0); c7_1 = c7_1.addingProduct(a7, b1)
            pb += bBytes
            p &+= 1
        }
        let va = SIMD16<Float>(repeating: alpha), vb = SIMD16<Float>(repeating: beta)
        let mode = beta == 0 ? 0 : (beta == 1 ? 1 : 2)
        var row = UnsafeMutableRawPointer(c)
        let rs = ldc &* 4
        update(row, c0_0, va, vb, mode); update(row + 64, c0_1, va, vb, mode); row += rs
        update(row, c1_0, va, vb, mode); update(row + 64, c1_1, va, vb, mode); row += rs
        update(row, c2_0, va, vb, mode); update(row + 64, c2_1, va, vb, mode); row += rs
        update(row, c3_0, va, vb, mode); update(row + 64, c3_1, va, vb, mode); row += rs
        update(row, c4_0, va, vb, mode); update(row + 64, c4_1, va, vb, mode); row += rs
        update(row, c5_0, va, vb, mode); update(row + 64, c5_1, va, vb, mode); row += rs
        update(row, c6_0, va, vb, mode); update(row + 64, c6_1, va, vb, mode); row += rs
        update(row, c7_0, va, vb, mode); update(row + 64, c7_1, va, vb, mode)
    }

    /// kernel8x32 over the k steps listed in `steps` only (in order; see `GEMM.nonZeroSteps(columns:)`).
    @inline(never)
    static func kernel8x32Sparse(_ count: Int, _ steps: UnsafePointer<Int32>, _ a: UnsafePointer<Float>, _ aStep: Int,
                       _ b: UnsafePointer<Float>, _ bStep: Int,
                       _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float) {
        var c0_0 = SIMD16<Float>(); var c0_1 = SIMD16<Float>(); var c1_0 = SIMD16<Float>(); var c1_1 = SIMD16<Float>();
        var c2_0 = SIMD16<Float>(); var c2_1 = SIMD16<Float>(); var c3_0 = SIMD16<Float>(); var c3_1 = SIMD16<Float>();
        var c4_0 = SIMD16<Float>(); var c4_1 = SIMD16<Float>(); var c5_0 = SIMD16<Float>(); var c5_1 = SIMD16<Float>();
        var c6_0 = SIMD16<Float>(); var c6_1 = SIMD16<Float>(); var c7_0 = SIMD16<Float>(); var c7_1 = SIMD16<Float>();
        let rb = UnsafeRawPointer(b)
        let bBytes = bStep &* 4
        var t = 0
        while t < count {
            let p = Int(steps[t])
            let pb = rb + p &* bBytes
            let pa = a + p &* aStep
            let b0 = pb.loadUnaligned(fromByteOffset: 0, as: SIMD16<Float>.self)
            let b1 = pb.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
            let a0 = SIMD16<Float>(repeating: pa[0]); c0_0 = c0_0.addingProduct(a0, b0); c0_1 = c0_1.addingProduct(a0, b1)
            let a1 = SIMD16<Float>(repeating: pa[1]); c1_0 = c1_0.addingProduct(a1, b0); c1_1 = c1_1.addingProduct(a1, b1)
            let a2 = SIMD16<Float>(repeating: pa[2]); c2_0 = c2_0.addingProduct(a2, b0); c2_1 = c2_1.addingProduct(a2, b1)
            let a3 = SIMD16<Float>(repeating: pa[3]); c3_0 = c3_0.addingProduct(a3, b0); c3_1 = c3_1.addingProduct(a3, b1)
            let a4 = SIMD16<Float>(repeating: pa[4]); c4_0 = c4_0.addingProduct(a4, b0); c4_1 = c4_1.addingProduct(a4, b1)
            let a5 = SIMD16<Float>(repeating: pa[5]); c5_0 = c5_0.addingProduct(a5, b0); c5_1 = c5_1.addingProduct(a5, b1)
            let a6 = SIMD16<Float>(repeating: pa[6]); c6_0 = c6_0.addingProduct(a6, b0); c6_1 = c6_1.addingProduct(a6, b1)
            let a7 = SIMD16<Float>(repeating: pa[7]); c7_0 = c7_0.addingProduct(a7, b0); c7_1 = c7_1.addingProduct(a7, b1)
            t &+= 1
        }
        let va = SIMD16<Float>(repeating: alpha), vb = SIMD16<Float>(repeating: beta)
        let mode = beta == 0 ? 0 : (beta == 1 ? 1 : 2)
        var row = UnsafeMutableRawPointer(c)
        let rs = ldc &* 4
        update(row, c0_0, va, vb, mode); update(row + 64, c0_1, va, vb, mode); row += rs
        update(row, c1_0, va, vb, mode); update(row + 64, c1_1, va, vb, mode); row += rs
        update(row, c2_0, va, vb, mode); update(row + 64, c2_1, va, vb, mode); row += rs
        update(row, c3_0, va, vb, mode); update(row + 64, c3_1, va, vb, mode); row += rs
        update(row, c4_0, va, vb, mode); update(row + 64, c4_1, va, vb, mode); row += rs
        update(row, c5_0, va, vb, mode); update(row + 64, c5_1, va, vb, mode); row += rs
        update(row, c6_0, va, vb, mode); update(row + 64, c6_1, va, vb, mode); row += rs
        update(row, c7_0, va, vb, mode); update(row + 64, c7_1, va, vb, mode)
    }

    /// kernelRows8x32 over the k steps listed in `steps` only (in order; see `GEMM.nonZeroSteps`).
    @inline(never)
    static func kernelRows8x32Sparse(_ count: Int, _ steps: UnsafePointer<Int32>, _ a: UnsafePointer<Float>, _ lda: Int,
                       _ b: UnsafePointer<Float>, _ bStep: Int,
                       _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float) {
        var c0_0 = SIMD16<Float>(); var c0_1 = SIMD16<Float>(); var c1_0 = SIMD16<Float>(); var c1_1 = SIMD16<Float>();
        var c2_0 = SIMD16<Float>(); var c2_1 = SIMD16<Float>(); var c3_0 = SIMD16<Float>(); var c3_1 = SIMD16<Float>();
        var c4_0 = SIMD16<Float>(); var c4_1 = SIMD16<Float>(); var c5_0 = SIMD16<Float>(); var c5_1 = SIMD16<Float>();
        var c6_0 = SIMD16<Float>(); var c6_1 = SIMD16<Float>(); var c7_0 = SIMD16<Float>(); var c7_1 = SIMD16<Float>();
        let r0 = a, r1 = a + lda, r2 = a + 2 &* lda, r3 = a + 3 &* lda
        let r4 = a + 4 &* lda, r5 = a + 5 &* lda, r6 = a + 6 &* lda, r7 = a + 7 &* lda
        let rb = UnsafeRawPointer(b)
        let bBytes = bStep &* 4
        var t = 0
        while t < count {
            let p = Int(steps[t])
            let pb = rb + p &* bBytes
            let b0 = pb.loadUnaligned(fromByteOffset: 0, as: SIMD16<Float>.self)
            let b1 = pb.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self)
            let a0 = SIMD16<Float>(repeating: r0[p]); c0_0 = c0_0.addingProduct(a0, b0); c0_1 = c0_1.addingProduct(a0, b1)
            let a1 = SIMD16<Float>(repeating: r1[p]); c1_0 = c1_0.addingProduct(a1, b0); c1_1 = c1_1.addingProduct(a1, b1)
            let a2 = SIMD16<Float>(repeating: r2[p]); c2_0 = c2_0.addingProduct(a2, b0); c2_1 = c2_1.addingProduct(a2, b1)
            let a3 = SIMD16<Float>(repeating: r3[p]); c3_0 = c3_0.addingProduct(a3, b0); c3_1 = c3_1.addingProduct(a3, b1)
            let a4 = SIMD16<Float>(repeating: r4[p]); c4_0 = c4_0.addingProduct(a4, b0); c4_1 = c4_1.addingProduct(a4, b1)
            let a5 = SIMD16<Float>(repeating: r5[p]); c5_0 = c5_0.addingProduct(a5, b0); c5_1 = c5_1.addingProduct(a5, b1)
            let a6 = SIMD16<Float>(repeating: r6[p]); c6_0 = c6_0.addingProduct(a6, b0); c6_1 = c6_1.addingProduct(a6, b1)
            let a7 = SIMD16<Float>(repeating: r7[p]); c7_0 = c7_0.addingProduct(a7, b0); c7_1 = c7_1.addingProduct(a7, b1)
            t &+= 1
        }
        let va = SIMD16<Float>(repeating: alpha), vb = SIMD16<Float>(repeating: beta)
        let mode = beta == 0 ? 0 : (beta == 1 ? 1 : 2)
        var row = UnsafeMutableRawPointer(c)
        let rs = ldc &* 4
        update(row, c0_0, va, vb, mode); update(row + 64, c0_1, va, vb, mode); row += rs
        update(row, c1_0, va, vb, mode); update(row + 64, c1_1, va, vb, mode); row += rs
        update(row, c2_0, va, vb, mode); update(row + 64, c2_1, va, vb, mode); row += rs
        update(row, c3_0, va, vb, mode); update(row + 64, c3_1, va, vb, mode); row += rs
        update(row, c4_0, va, vb, mode); update(row + 64, c4_1, va, vb, mode); row += rs
        update(row, c5_0, va, vb, mode); update(row + 64, c5_1, va, vb, mode); row += rs
        update(row, c6_0, va, vb, mode); update(row + 64, c6_1, va, vb, mode); row += rs
        update(row, c7_0, va, vb, mode); update(row + 64, c7_1, va, vb, mode)
    }

    /// 8×16 tile reading A in place from 8 rows of A stored m×k (row i at a + i·lda), 8 SIMD16<Float> accumulators.
    @inline(never)
    static func kernelRows8x16(_ kc: Int, _ a: UnsafePointer<Float>, _ lda: Int,
                       _ b: UnsafePointer<Float>, _ bStep: Int,
                       _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float) {
        var c0_0 = SIMD16<Float>(); var c1_0 = SIMD16<Float>(); var c2_0 = SIMD16<Float>(); var c3_0 = SIMD16<Float>();
        var c4_0 = SIMD16<Float>(); var c5_0 = SIMD16<Float>(); var c6_0 = SIMD16<Float>(); var c7_0 = SIMD16<Float>();
        let r0 = a, r1 = a + lda, r2 = a + 2 &* lda, r3 = a + 3 &* lda
        let r4 = a + 4 &* lda, r5 = a + 5 &* lda, r6 = a + 6 &* lda, r7 = a + 7 &* lda
        var pb = UnsafeRawPointer(b)
        let bBytes = bStep &* 4
        var p = 0
        while p < kc {
            let b0 = pb.loadUnaligned(as: SIMD16<Float>.self)
            c0_0 = c0_0.addingProduct(SIMD16<Float>(repeating: r0[p]), b0)
            c1_0 = c1_0.addingProduct(SIMD16<Float>(repeating: r1[p]), b0)
            c2_0 = c2_0.addingProduct(SIMD16<Float>(repeating: r2[p]), b0)
            c3_0 = c3_0.addingProduct(SIMD16<Float>(repeating: r3[p]), b0)
            c4_0 = c4_0.addingProduct(SIMD16<Float>(repeating: r4[p]), b0)
            c5_0 = c5_0.addingProduct(SIMD16<Float>(repeating: r5[p]), b0)
            c6_0 = c6_0.addingProduct(SIMD16<Float>(repeating: r6[p]), b0)
            c7_0 = c7_0.addingProduct(SIMD16<Float>(repeating: r7[p]), b0)
            pb += bBytes
            p &+= 1
        }
        let va = SIMD16<Float>(repeating: alpha), vb = SIMD16<Float>(repeating: beta)
        let mode = beta == 0 ? 0 : (beta == 1 ? 1 : 2)
        var row = UnsafeMutableRawPointer(c)
        let rs = ldc &* 4
        update(row, c0_0, va, vb, mode); row += rs
        update(row, c1_0, va, vb, mode); row += rs
        update(row, c2_0, va, vb, mode); row += rs
        update(row, c3_0, va, vb, mode); row += rs
        update(row, c4_0, va, vb, mode); row += rs
        update(row, c5_0, va, vb, mode); row += rs
        update(row, c6_0, va, vb, mode); row += rs
        update(row, c7_0, va, vb, mode)
    }

    /// kernelRows8x16 or kernelRows8x8 over the k steps listed in `steps` only (in order; see
    /// `GEMM.nonZeroSteps`): the 16- or 8-column tail panel of a product whose A is sparse (x·W₁ᵀ, n = 400:
    /// 16; a piece of 200 columns: 8), with the wide tiles' list. One body for both widths (`V`).
    @inline(__always)
    static func kernelRows8Sparse<V: SIMD>(_: V.Type, _ count: Int, _ steps: UnsafePointer<Int32>,
                                          _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ bStep: Int,
                                          _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float)
    where V.Scalar == Float {
        var c0_0 = V(); var c1_0 = V(); var c2_0 = V(); var c3_0 = V();
        var c4_0 = V(); var c5_0 = V(); var c6_0 = V(); var c7_0 = V();
        let r0 = a, r1 = a + lda, r2 = a + 2 &* lda, r3 = a + 3 &* lda
        let r4 = a + 4 &* lda, r5 = a + 5 &* lda, r6 = a + 6 &* lda, r7 = a + 7 &* lda
        let rb = UnsafeRawPointer(b)
        let bBytes = bStep &* 4
        var t = 0
        while t < count {
            let p = Int(steps[t])
            let b0 = (rb + p &* bBytes).loadUnaligned(as: V.self)
            c0_0 = c0_0.addingProduct(V(repeating: r0[p]), b0)
            c1_0 = c1_0.addingProduct(V(repeating: r1[p]), b0)
            c2_0 = c2_0.addingProduct(V(repeating: r2[p]), b0)
            c3_0 = c3_0.addingProduct(V(repeating: r3[p]), b0)
            c4_0 = c4_0.addingProduct(V(repeating: r4[p]), b0)
            c5_0 = c5_0.addingProduct(V(repeating: r5[p]), b0)
            c6_0 = c6_0.addingProduct(V(repeating: r6[p]), b0)
            c7_0 = c7_0.addingProduct(V(repeating: r7[p]), b0)
            t &+= 1
        }
        let va = V(repeating: alpha), vb = V(repeating: beta)
        let mode = beta == 0 ? 0 : (beta == 1 ? 1 : 2)
        var row = UnsafeMutableRawPointer(c)
        let rs = ldc &* 4
        update(row, c0_0, va, vb, mode); row += rs
        update(row, c1_0, va, vb, mode); row += rs
        update(row, c2_0, va, vb, mode); row += rs
        update(row, c3_0, va, vb, mode); row += rs
        update(row, c4_0, va, vb, mode); row += rs
        update(row, c5_0, va, vb, mode); row += rs
        update(row, c6_0, va, vb, mode); row += rs
        update(row, c7_0, va, vb, mode)
    }

    @inline(never)
    static func kernelRows8x16Sparse(_ count: Int, _ steps: UnsafePointer<Int32>, _ a: UnsafePointer<Float>, _ lda: Int,
                                     _ b: UnsafePointer<Float>, _ bStep: Int,
                                     _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float) {
        kernelRows8Sparse(SIMD16<Float>.self, count, steps, a, lda, b, bStep, c, ldc, alpha, beta)
    }

    @inline(never)
    static func kernelRows8x8Sparse(_ count: Int, _ steps: UnsafePointer<Int32>, _ a: UnsafePointer<Float>, _ lda: Int,
                                    _ b: UnsafePointer<Float>, _ bStep: Int,
                                    _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float) {
        kernelRows8Sparse(SIMD8<Float>.self, count, steps, a, lda, b, bStep, c, ldc, alpha, beta)
    }

    /// 8×8 tile reading A in place from 8 rows of A stored m×k (row i at a + i·lda), 8 SIMD8<Float> accumulators.
    @inline(never)
    static func kernelRows8x8(_ kc: Int, _ a: UnsafePointer<Float>, _ lda: Int,
                       _ b: UnsafePointer<Float>, _ bStep: Int,
                       _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ alpha: Float, _ beta: Float) {
        var c0_0 = SIMD8<Float>(); var c1_0 = SIMD8<Float>(); var c2_0 = SIMD8<Float>(); var c3_0 = SIMD8<Float>();
        var c4_0 = SIMD8<Float>(); var c5_0 = SIMD8<Float>(); var c6_0 = SIMD8<Float>(); var c7_0 = SIMD8<Float>();
        let r0 = a, r1 = a + lda, r2 = a + 2 &* lda, r3 = a + 3 &* lda
        let r4 = a + 4 &* lda, r5 = a + 5 &* lda, r6 = a + 6 &* lda, r7 = a + 7 &* lda
        var pb = UnsafeRawPointer(b)
        let bBytes = bStep &* 4
        var p = 0
        while p < kc {
            let b0 = pb.loadUnaligned(as: SIMD8<Float>.self)
            c0_0 = c0_0.addingProduct(SIMD8<Float>(repeating: r0[p]), b0)
            c1_0 = c1_0.addingProduct(SIMD8<Float>(repeating: r1[p]), b0)
            c2_0 = c2_0.addingProduct(SIMD8<Float>(repeating: r2[p]), b0)
            c3_0 = c3_0.addingProduct(SIMD8<Float>(repeating: r3[p]), b0)
            c4_0 = c4_0.addingProduct(SIMD8<Float>(repeating: r4[p]), b0)
            c5_0 = c5_0.addingProduct(SIMD8<Float>(repeating: r5[p]), b0)
            c6_0 = c6_0.addingProduct(SIMD8<Float>(repeating: r6[p]), b0)
            c7_0 = c7_0.addingProduct(SIMD8<Float>(repeating: r7[p]), b0)
            pb += bBytes
            p &+= 1
        }
        let va = SIMD8<Float>(repeating: alpha), vb = SIMD8<Float>(repeating: beta)
        let mode = beta == 0 ? 0 : (beta == 1 ? 1 : 2)
        var row = UnsafeMutableRawPointer(c)
        let rs = ldc &* 4
        update(row, c0_0, va, vb, mode); row += rs
        update(row, c1_0, va, vb, mode); row += rs
        update(row, c2_0, va, vb, mode); row += rs
        update(row, c3_0, va, vb, mode); row += rs
        update(row, c4_0, va, vb, mode); row += rs
        update(row, c5_0, va, vb, mode); row += rs
        update(row, c6_0, va, vb, mode); row += rs
        update(row, c7_0, va, vb, mode)
    }

    /// kernelRows8x8 over the k steps listed in `steps` only (in order; see `GEMM.nonZeroSteps`): the
}
