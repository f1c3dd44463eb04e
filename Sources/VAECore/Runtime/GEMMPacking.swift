// Packing of A and B blocks into the contiguous micro-panel layouts the GEMM micro-kernels read.
// The transposes are handled here (in-register 16×16 and 8×16 transposes), so no transposed copy
// of an operand is ever made. Layouts, per k-block of length kc starting at p0 (see GEMM.Plan):
//
//   A: panels of 8 rows; the panel holding rows r..<r+8 sits at offset r·kc and holds, for
//      p = 0..<kc, the 8 values op(A)[r + i, p0 + p], zero-padded past m.
//   B: panels of 32, 16 or 8 columns; the panel starting at column j sits at offset j·kc and holds,
//      for p = 0..<kc, its w values op(B)[p0 + p, j + 0..<w], zero-padded past n.

extension GEMM {
    // MARK: A

    /// Packs rows i0..<i0+mc of op(A) (i0 a multiple of 8) into consecutive 8-row panels at dst.
    static func packA(trans: Bool, a: UnsafePointer<Float>, lda: Int, i0: Int, mc: Int,
                      p0: Int, kc: Int, dst: UnsafeMutablePointer<Float>) {
        var ir = 0
        var d = dst
        while ir < mc {
            let rows = min(mr, mc - ir)
            if trans {
                // A stored k×m: each k step is a contiguous run of mr values.
                let src = a + p0 * lda + (i0 + ir)
                if rows == mr {
                    for p in 0..<kc {
                        UnsafeMutableRawPointer(d + p * mr).storeBytes(
                            of: UnsafeRawPointer(src + p * lda).loadUnaligned(as: SIMD8<Float>.self),
                            as: SIMD8<Float>.self)
                    }
                } else {
                    for p in 0..<kc {
                        let s = src + p * lda, dd = d + p * mr
                        for i in 0..<rows { dd[i] = s[i] }
                        for i in rows..<mr { dd[i] = 0 }
                    }
                }
            } else {
                // A stored m×k: row i is contiguous in p; interleave mr rows.
                let src = a + (i0 + ir) * lda + p0
                if rows == mr {
                    packRows8(src: src, ld: lda, kc: kc, dst: d)
                } else {
                    for i in 0..<rows {
                        let s = src + i * lda
                        for p in 0..<kc { d[p * mr + i] = s[p] }
                    }
                    for i in rows..<mr {
                        for p in 0..<kc { d[p * mr + i] = 0 }
                    }
                }
            }
            d += mr * kc
            ir += mr
        }
    }

    /// dst[p·8 + i] = src[i·ld + p] for i < 8, p < kc: 8×16 blocks transposed in registers.
    @inline(__always)
    static func packRows8(src: UnsafePointer<Float>, ld: Int, kc: Int, dst: UnsafeMutablePointer<Float>) {
        var p = 0
        while p + 16 <= kc {
            transpose8x16(src + p, ld, dst + p * 8)
            p += 16
        }
        if p < kc {
            let r0 = src, r1 = src + ld, r2 = src + 2 * ld, r3 = src + 3 * ld
            let r4 = src + 4 * ld, r5 = src + 5 * ld, r6 = src + 6 * ld, r7 = src + 7 * ld
            var d = dst + p * 8
            while p < kc {
                d[0] = r0[p]; d[1] = r1[p]; d[2] = r2[p]; d[3] = r3[p]
                d[4] = r4[p]; d[5] = r5[p]; d[6] = r6[p]; d[7] = r7[p]
                d += 8
                p += 1
            }
        }
    }

    // MARK: In-register transposes
    //
    // A transpose of an R×16 block (R = 8 or 16) is a rotation of the bits of the flattened element
    // index by 4. One "deinterleave" of the whole flattened block (evens first, then odds) rotates
    // that index right by one bit, so four deinterleaves make the transpose. On vectors, a
    // deinterleave is out[q] = (in[2q].even, in[2q+1].even), out[q + R/2] = (in[2q].odd, in[2q+1].odd),
    // which LLVM lowers to one two-source permute (vpermt2ps) per output vector.

    @inline(__always)
    static func deinterleave(_ x: SIMD16<Float>, _ y: SIMD16<Float>) -> (SIMD16<Float>, SIMD16<Float>) {
        (SIMD16(lowHalf: x.evenHalf, highHalf: y.evenHalf), SIMD16(lowHalf: x.oddHalf, highHalf: y.oddHalf))
    }

    /// Rows src[i·ld ..< i·ld + 16], i < 8, to dst[p·8 + i] (128 contiguous floats).
    @inline(__always)
    static func transpose8x16(_ src: UnsafePointer<Float>, _ ld: Int, _ dst: UnsafeMutablePointer<Float>) {
        let s = UnsafeRawPointer(src), rs = ld &* 4
        var v0 = s.loadUnaligned(as: SIMD16<Float>.self)
        var v1 = s.loadUnaligned(fromByteOffset: rs, as: SIMD16<Float>.self)
        var v2 = s.loadUnaligned(fromByteOffset: 2 &* rs, as: SIMD16<Float>.self)
        var v3 = s.loadUnaligned(fromByteOffset: 3 &* rs, as: SIMD16<Float>.self)
        var v4 = s.loadUnaligned(fromByteOffset: 4 &* rs, as: SIMD16<Float>.self)
        var v5 = s.loadUnaligned(fromByteOffset: 5 &* rs, as: SIMD16<Float>.self)
        var v6 = s.loadUnaligned(fromByteOffset: 6 &* rs, as: SIMD16<Float>.self)
        var v7 = s.loadUnaligned(fromByteOffset: 7 &* rs, as: SIMD16<Float>.self)
        for _ in 0..<4 {
            let (w0, w4) = deinterleave(v0, v1), (w1, w5) = deinterleave(v2, v3)
            let (w2, w6) = deinterleave(v4, v5), (w3, w7) = deinterleave(v6, v7)
            v0 = w0; v1 = w1; v2 = w2; v3 = w3; v4 = w4; v5 = w5; v6 = w6; v7 = w7
        }
        let d = UnsafeMutableRawPointer(dst)
        d.storeBytes(of: v0, toByteOffset: 0, as: SIMD16<Float>.self)
        d.storeBytes(of: v1, toByteOffset: 64, as: SIMD16<Float>.self)
        d.storeBytes(of: v2, toByteOffset: 128, as: SIMD16<Float>.self)
        d.storeBytes(of: v3, toByteOffset: 192, as: SIMD16<Float>.self)
        d.storeBytes(of: v4, toByteOffset: 256, as: SIMD16<Float>.self)
        d.storeBytes(of: v5, toByteOffset: 320, as: SIMD16<Float>.self)
        d.storeBytes(of: v6, toByteOffset: 384, as: SIMD16<Float>.self)
        d.storeBytes(of: v7, toByteOffset: 448, as: SIMD16<Float>.self)
    }

    /// Rows src[j·ld ..< j·ld + 16], j < 16, to dst[p·dstStride + j] for p < 16.
    @inline(__always)
    static func transpose16x16(_ src: UnsafePointer<Float>, _ ld: Int,
                               _ dst: UnsafeMutablePointer<Float>, _ dstStride: Int) {
        let s = UnsafeRawPointer(src), rs = ld &* 4
        var v0 = s.loadUnaligned(as: SIMD16<Float>.self)
        var v1 = s.loadUnaligned(fromByteOffset: rs, as: SIMD16<Float>.self)
        var v2 = s.loadUnaligned(fromByteOffset: 2 &* rs, as: SIMD16<Float>.self)
        var v3 = s.loadUnaligned(fromByteOffset: 3 &* rs, as: SIMD16<Float>.self)
        var v4 = s.loadUnaligned(fromByteOffset: 4 &* rs, as: SIMD16<Float>.self)
        var v5 = s.loadUnaligned(fromByteOffset: 5 &* rs, as: SIMD16<Float>.self)
        var v6 = s.loadUnaligned(fromByteOffset: 6 &* rs, as: SIMD16<Float>.self)
        var v7 = s.loadUnaligned(fromByteOffset: 7 &* rs, as: SIMD16<Float>.self)
        var v8 = s.loadUnaligned(fromByteOffset: 8 &* rs, as: SIMD16<Float>.self)
        var v9 = s.loadUnaligned(fromByteOffset: 9 &* rs, as: SIMD16<Float>.self)
        var v10 = s.loadUnaligned(fromByteOffset: 10 &* rs, as: SIMD16<Float>.self)
        var v11 = s.loadUnaligned(fromByteOffset: 11 &* rs, as: SIMD16<Float>.self)
        var v12 = s.loadUnaligned(fromByteOffset: 12 &* rs, as: SIMD16<Float>.self)
        var v13 = s.loadUnaligned(fromByteOffset: 13 &* rs, as: SIMD16<Float>.self)
        var v14 = s.loadUnaligned(fromByteOffset: 14 &* rs, as: SIMD16<Float>.self)
        var v15 = s.loadUnaligned(fromByteOffset: 15 &* rs, as: SIMD16<Float>.self)
        for _ in 0..<4 {
            let (w0, w8) = deinterleave(v0, v1), (w1, w9) = deinterleave(v2, v3)
            let (w2, w10) = deinterleave(v4, v5), (w3, w11) = deinterleave(v6, v7)
            let (w4, w12) = deinterleave(v8, v9), (w5, w13) = deinterleave(v10, v11)
            let (w6, w14) = deinterleave(v12, v13), (w7, w15) = deinterleave(v14, v15)
            v0 = w0; v1 = w1; v2 = w2; v3 = w3; v4 = w4; v5 = w5; v6 = w6; v7 = w7
            v8 = w8; v9 = w9; v10 = w10; v11 = w11; v12 = w12; v13 = w13; v14 = w14; v15 = w15
        }
        let d = UnsafeMutableRawPointer(dst), ds = dstStride &* 4
        d.storeBytes(of: v0, as: SIMD16<Float>.self)
        d.storeBytes(of: v1, toByteOffset: ds, as: SIMD16<Float>.self)
        d.storeBytes(of: v2, toByteOffset: 2 &* ds, as: SIMD16<Float>.self)
        d.storeBytes(of: v3, toByteOffset: 3 &* ds, as: SIMD16<Float>.self)
        d.storeBytes(of: v4, toByteOffset: 4 &* ds, as: SIMD16<Float>.self)
        d.storeBytes(of: v5, toByteOffset: 5 &* ds, as: SIMD16<Float>.self)
        d.storeBytes(of: v6, toByteOffset: 6 &* ds, as: SIMD16<Float>.self)
        d.storeBytes(of: v7, toByteOffset: 7 &* ds, as: SIMD16<Float>.self)
        d.storeBytes(of: v8, toByteOffset: 8 &* ds, as: SIMD16<Float>.self)
        d.storeBytes(of: v9, toByteOffset: 9 &* ds, as: SIMD16<Float>.self)
        d.storeBytes(of: v10, toByteOffset: 10 &* ds, as: SIMD16<Float>.self)
        d.storeBytes(of: v11, toByteOffset: 11 &* ds, as: SIMD16<Float>.self)
        d.storeBytes(of: v12, toByteOffset: 12 &* ds, as: SIMD16<Float>.self)
        d.storeBytes(of: v13, toByteOffset: 13 &* ds, as: SIMD16<Float>.self)
        d.storeBytes(of: v14, toByteOffset: 14 &* ds, as: SIMD16<Float>.self)
        d.storeBytes(of: v15, toByteOffset: 15 &* ds, as: SIMD16<Float>.self)
    }

    // MARK: B

    /// Packs one B panel: dst[p·stride + j] = op(B)[p0 + p, j0 + j] for j < cols, 0 for cols ≤ j < width
    /// (stride: width for a panel of its own, more when panels are packed side by side, row-major).
    static func packBPanel(trans: Bool, b: UnsafePointer<Float>, ldb: Int, p0: Int, kc: Int,
                           j0: Int, cols: Int, width: Int, dst: UnsafeMutablePointer<Float>, stride: Int? = nil) {
        let stride = stride ?? width
        if trans {
            // B stored n×k: column j of op(B) is the contiguous row j of storage.
            packColumns(src: b + j0 * ldb + p0, ld: ldb, cols: cols, width: width, kc: kc, dst: dst, stride: stride)
            return
        }
        // B stored k×n: each k step is a contiguous run of columns.
        let src = b + p0 * ldb + j0
        if cols == width && width >= 16 {
            let dr = UnsafeMutableRawPointer(dst)
            for p in 0..<kc {
                let s = UnsafeRawPointer(src + p * ldb)
                let d = dr + p * stride * 4
                d.storeBytes(of: s.loadUnaligned(as: SIMD16<Float>.self), as: SIMD16<Float>.self)
                if width == 32 {
                    d.storeBytes(of: s.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self),
                                 toByteOffset: 64, as: SIMD16<Float>.self)
                }
            }
        } else {
            for p in 0..<kc {
                let s = src + p * ldb, d = dst + p * stride
                for j in 0..<cols { d[j] = s[j] }
                for j in cols..<width { d[j] = 0 }
            }
        }
    }

    /// dst[p·stride + j] = src[j·ld + p] for j < cols, 0 for cols ≤ j < width; p < kc.
    @inline(__always)
    static func packColumns(src: UnsafePointer<Float>, ld: Int, cols: Int, width: Int, kc: Int,
                            dst: UnsafeMutablePointer<Float>, stride: Int) {
        var p0 = 0
        if cols == width && width % 16 == 0 {
            // Full panel: 16×16 blocks transposed in registers.
            while p0 + 16 <= kc {
                var h = 0
                while h < width {
                    transpose16x16(src + h * ld + p0, ld, dst + p0 * stride + h, stride)
                    h += 16
                }
                p0 += 16
            }
        } else if cols == 8 && width == 8 && stride == 8 {
            while p0 + 16 <= kc {
                transpose8x16(src + p0, ld, dst + p0 * 8)
                p0 += 16
            }
        }
        // Remainder (and edge panels): scalar, in chunks of p so the destination stays in L1.
        let chunk = 64
        while p0 < kc {
            let pe = min(kc, p0 + chunk)
            for j in 0..<cols {
                let s = src + j * ld
                var d = dst + p0 * stride + j
                for p in p0..<pe {
                    d.pointee = s[p]
                    d += stride
                }
            }
            if cols < width {
                for p in p0..<pe {
                    let d = dst + p * stride
                    for j in cols..<width { d[j] = 0 }
                }
            }
            p0 = pe
        }
    }
}
