/// The sizes of one convolution, and the moves between images and patch matrices that turn it into
/// a GEMM (im2col and its adjoint col2im).
///
/// With images stored channels-last, the input patch of output pixel o is kh rows of kw·Ci floats,
/// each row contiguous in memory (kw neighbouring pixels of one image row, all their channels). So the
/// patch matrix uses the column order (a, b, ci) — column (a·kw + b)·Ci + ci — rather than PyTorch's
/// weight order (ci, a, b): gathering a patch row is then kh copies of contiguous runs instead of
/// Ci·kh·kw scalar moves, and scattering it back kh vector adds. The weights, much smaller than the
/// patches, are reordered to match (`reorderWeights`, `storeWeights`).
struct ConvShape {
    let geometry: ConvGeometry
    /// Channels of the convolution's input (x) and output (y) images.
    let inChannels: Int
    let outChannels: Int

    var taps: Int { geometry.kernel.area }
    /// Columns of the patch matrix: kh·kw·Ci.
    var patchWidth: Int { taps * inChannels }
    var inPixels: Int { geometry.input.area }
    var outPixels: Int { geometry.output.area }
    /// Floats of one example of x and of y.
    var inSize: Int { inPixels * inChannels }
    var outSize: Int { outPixels * outChannels }
    /// Floats of one kernel row of a patch (kw pixels × Ci channels, contiguous in x).
    var kernelRun: Int { geometry.kernel.width * inChannels }

    /// A 1×1 kernel with stride 1 and no padding: the patch matrix is x itself.
    var isPointwise: Bool {
        geometry.kernel == Size2(1, 1) && geometry.stride == Size2(1, 1) && geometry.padBefore == Size2(0, 0)
    }

    /// Examples per chunk of a kernel that materialises patches: as many as keep a chunk's patch rows
    /// (at the full width) within `budget` floats, so the patches stay in the core's L2 between being
    /// written and read by the GEMM. It depends only on the shape, never on the thread count.
    func chunkExamples(budget: Int) -> Int { max(1, budget / max(1, outPixels * patchWidth)) }

    /// The part of kernel row `a` of output pixel (oy, ox)'s patch that lies inside the image: where it
    /// starts in x (within one example), how many patch columns of left padding precede it, and how many
    /// columns it spans (0 when the whole kernel row is in the padding).
    @inline(__always)
    func kernelRow(oy: Int, ox: Int, a: Int) -> (source: Int, skip: Int, valid: Int) {
        let g = geometry
        let iy = oy * g.stride.height + a - g.padBefore.height
        guard iy >= 0, iy < g.input.height else { return (0, 0, 0) }
        let ix0 = ox * g.stride.width - g.padBefore.width
        let bLo = max(0, -ix0), bHi = min(g.kernel.width, g.input.width - ix0)
        guard bHi > bLo else { return (0, 0, 0) }
        return ((iy * g.input.width + ix0 + bLo) * inChannels, bLo * inChannels, (bHi - bLo) * inChannels)
    }

    // MARK: im2col and col2im

    /// The leading dimension to give a matrix of `columns` floats per row that the GEMM reads: the GEMM
    /// reads an operand in place (no packing) only when its leading dimension is not a multiple of 64
    /// floats (rows 256 bytes apart alias in the cache), so such rows get 16 floats of slack.
    static func leadingDimension(_ columns: Int) -> Int { columns % 64 == 0 ? columns + 16 : columns }

    /// patches[row · rowStride + col − columns.lowerBound] = the patch matrix of the examples, over
    /// `columns` only (rows: example-major, then output pixel; padding reads as zero).
    func gather(_ x: UnsafePointer<Float>, examples: Range<Int>, columns: Range<Int>, into patches: UnsafeMutablePointer<Float>,
                rowStride: Int) {
        let run = kernelRun
        var row = patches
        for n in examples {
            let image = x + n * inSize
            for oy in 0..<geometry.output.height {
                for ox in 0..<geometry.output.width {
                    for a in 0..<geometry.kernel.height {
                        let segment = a * run
                        let lo = max(segment, columns.lowerBound), hi = min(segment + run, columns.upperBound)
                        guard lo < hi else { continue }
                        let r = kernelRow(oy: oy, ox: ox, a: a)
                        // Valid columns of this kernel row, as patch columns.
                        let vLo = max(lo, segment + r.skip), vHi = min(hi, segment + r.skip + r.valid)
                        let dst = row - columns.lowerBound
                        if vLo < vHi {
                            Self.zero(dst + lo, vLo - lo)
                            (dst + vLo).update(from: image + r.source + (vLo - segment - r.skip), count: vHi - vLo)
                            Self.zero(dst + vHi, hi - vHi)
                        } else {
                            Self.zero(dst + lo, hi - lo)
                        }
                    }
                    row += rowStride
                }
            }
        }
    }

    /// dx += the adjoint of `gather` (full width) applied to `columns`: every patch value is added to
    /// the input pixel it was read from, in row order, so each dx value sums its terms in a fixed order.
    func scatterAdd(_ columns: UnsafePointer<Float>, examples: Range<Int>, into dx: UnsafeMutablePointer<Float>, rowStride: Int) {
        let run = kernelRun
        var row = columns
        for n in examples {
            let image = dx + n * inSize
            for oy in 0..<geometry.output.height {
                for ox in 0..<geometry.output.width {
                    for a in 0..<geometry.kernel.height {
                        let r = kernelRow(oy: oy, ox: ox, a: a)
                        if r.valid > 0 { Self.add(row + a * run + r.skip, image + r.source, r.valid) }
                    }
                    row += rowStride
                }
            }
        }
    }

    // MARK: Weights

    /// reordered[co · rowStride + (a, b, ci)] = w[co, ci, a, b] (`transposed`: reordered[(a, b, ci) ·
    /// rowStride + co]), for all columns.
    func reorderWeights(_ w: UnsafePointer<Float>, into reordered: UnsafeMutablePointer<Float>, rowStride: Int, transposed: Bool) {
        let t = taps, ci = inChannels
        for c in 0..<outChannels {
            for d in 0..<ci {
                let src = w + (c * ci + d) * t
                if transposed {
                    for tap in 0..<t { reordered[(tap * ci + d) * rowStride + c] = src[tap] }
                } else {
                    let dst = reordered + c * rowStride + d
                    for tap in 0..<t { dst[tap * ci] = src[tap] }
                }
            }
        }
    }

    /// w[co, ci, a, b] = reordered[co · rowStride + (a, b, ci) − columns.lowerBound] for the columns in
    /// `columns`.
    func storeWeights(_ reordered: UnsafePointer<Float>, columns: Range<Int>, into w: UnsafeMutablePointer<Float>, rowStride: Int) {
        let t = taps, ci = inChannels
        for c in 0..<outChannels {
            for col in columns {
                let tap = col / ci, d = col - tap * ci
                w[(c * ci + d) * t + tap] = reordered[c * rowStride + col - columns.lowerBound]
            }
        }
    }

    // MARK: Vector loops

    @inline(__always) static func zero(_ p: UnsafeMutablePointer<Float>, _ n: Int) {
        if n > 0 { p.update(repeating: 0, count: n) }
    }

    /// dst[0..<n] += src[0..<n].
    @inline(__always) static func add(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 16 <= n {
            VectorMath.store(VectorMath.load(dst + i) + VectorMath.load(src + i), dst + i)
            i += 16
        }
        while i < n { dst[i] += src[i]; i += 1 }
    }
}
