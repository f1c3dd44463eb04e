/// The convolutions with a single input channel (Ci = 1: a first layer on grey images, and the data
/// gradient of a layer with one output channel) as direct loops vectorised over the output channels.
/// Their patch matrix would have only kh·kw columns: as a GEMM, k or n would be 9 for a 3×3 kernel and
/// most of each micro-kernel tile wasted, while the patch matrix itself (9 floats per output pixel, but
/// read with 16-float vectors) would cost more memory traffic than the product.
///
/// Threads and determinism as in `ConvKernels`: conv2d and conv2d_t split by examples; conv2d_filter by
/// groups of 16 output channels, each lane summing over the examples and pixels in order.
enum ConvSingleChannel {
    typealias V = SIMD16<Float>

    /// wt[tap, c] = w[c, 0, tap], each tap's row padded with zeros to `padded` channels.
    static func tapMajor(_ w: UnsafePointer<Float>, _ s: ConvShape, padded: Int, into wt: UnsafeMutablePointer<Float>) {
        let co = s.outChannels
        for t in 0..<s.taps {
            for c in 0..<padded { wt[t * padded + c] = c < co ? w[c * s.taps + t] : 0 }
        }
    }

    static func vectors(_ channels: Int) -> Int { (channels + 15) / 16 }

    /// Examples per epilogue call: about 16K floats of output, so the kernel that follows reads them
    /// from L1/L2.
    static func epilogueExamples(outputPerExample: Int) -> Int { max(1, 16_384 / max(1, outputPerExample)) }

    /// For one axis of the geometry, the taps that touch each position without reading padding, so the
    /// loops need no bounds tests: for output index o, `forward(o)` lists (kernel offset, input index);
    /// for input index i, `adjoint(i)` lists (kernel offset, output index). Flat buffers (no arrays of
    /// arrays: their reference counting in the pixel loops cost more than the arithmetic, measured).
    final class AxisTaps: @unchecked Sendable {
        private let kernel: Int
        /// Per position: the count, then up to `kernel` (tap, index) pairs.
        private let table: UnsafeMutablePointer<Int>
        private let adjointBase: Int

        init(input: Int, output: Int, kernel: Int, stride: Int, padBefore: Int) {
            self.kernel = kernel
            let entry = 1 + 2 * kernel
            adjointBase = output * entry
            table = .allocate(capacity: (output + input) * entry)
            table.initialize(repeating: 0, count: (output + input) * entry)
            for o in 0..<output {
                for t in 0..<kernel {
                    let i = o * stride + t - padBefore
                    guard i >= 0, i < input else { continue }
                    Self.append(table + o * entry, t, i)
                    Self.append(table + adjointBase + i * entry, t, o)
                }
            }
        }

        deinit { table.deallocate() }

        private static func append(_ entry: UnsafeMutablePointer<Int>, _ tap: Int, _ index: Int) {
            let n = entry[0]
            entry[1 + 2 * n] = tap; entry[2 + 2 * n] = index
            entry[0] = n + 1
        }

        /// (count, pairs): pairs[2j] is the tap, pairs[2j + 1] the input index.
        @inline(__always) func forward(_ o: Int) -> (Int, UnsafePointer<Int>) {
            let e = table + o * (1 + 2 * kernel)
            return (e[0], UnsafePointer(e + 1))
        }

        /// (count, pairs): pairs[2j] is the tap, pairs[2j + 1] the output index.
        @inline(__always) func adjoint(_ i: Int) -> (Int, UnsafePointer<Int>) {
            let e = table + adjointBase + i * (1 + 2 * kernel)
            return (e[0], UnsafePointer(e + 1))
        }

        static func of(_ g: ConvGeometry) -> (rows: AxisTaps, columns: AxisTaps) {
            (AxisTaps(input: g.input.height, output: g.output.height, kernel: g.kernel.height, stride: g.stride.height,
                      padBefore: g.padBefore.height),
             AxisTaps(input: g.input.width, output: g.output.width, kernel: g.kernel.width, stride: g.stride.width,
                      padBefore: g.padBefore.width))
        }
    }

    /// y[n, o, c] = Σ over taps of x[n, i(o, tap)] · w[c, 0, tap]; two vectors of channels per pass with
    /// their accumulators in registers (the weights are padded to whole pairs).
    static func conv2d(_ s: ConvShape, x: UnsafePointer<Float>, w: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                       batch: Int, pieces: Int, epilogue: ConvKernels.Epilogue?) -> [ConvKernels.Task] {
        let g = s.geometry, co = s.outChannels, padded = (co + 31) / 32 * 32
        let (rows, columns) = AxisTaps.of(g)
        let kw = g.kernel.width, width = g.input.width
        let chunk = epilogueExamples(outputPerExample: s.outSize)
        return ImageKernels.exampleRanges(batch, pieces).map { examples in
            let scratch = Scratch(s.taps * padded)
            let wt = scratch.base
            return { thread in
                tapMajor(w, s, padded: padded, into: wt)
                for first in stride(from: examples.lowerBound, to: examples.upperBound, by: chunk) {
                    let part = first..<min(first + chunk, examples.upperBound)
                    for n in part {
                        let image = x + n * s.inPixels
                        var out = y + n * s.outSize
                        for oy in 0..<g.output.height {
                            for ox in 0..<g.output.width {
                                for c0 in stride(from: 0, to: co, by: 32) {
                                    var (acc0, acc1) = (V(), V())
                                    let (nr, rp) = rows.forward(oy), (nc, cp) = columns.forward(ox)
                                    for r in 0..<nr {
                                        let (a, iy) = (rp[2 * r], rp[2 * r + 1])
                                        for c in 0..<nc {
                                            let (b, ix) = (cp[2 * c], cp[2 * c + 1])
                                            let weights = wt + (a * kw + b) * padded + c0
                                            let value = V(repeating: image[iy * width + ix])
                                            acc0 = acc0.addingProduct(value, VectorMath.load(weights))
                                            acc1 = acc1.addingProduct(value, VectorMath.load(weights + 16))
                                        }
                                    }
                                    store(acc0, out + c0, min(16, co - c0))
                                    if co - c0 > 16 { store(acc1, out + c0 + 16, min(16, co - c0 - 16)) }
                                }
                                out += co
                            }
                        }
                    }
                    epilogue?(part, thread)
                }
                withExtendedLifetime(scratch) {}
            }
        }
    }

    /// dx[n, i] = Σ over the (tap, o) that read input pixel i of Σ_c dy[n, o, c] · w[c, 0, tap]: the
    /// adjoint gathered per input pixel, so each dx value is one vector sum and no scatter is needed.
    static func conv2dTransposed(_ s: ConvShape, dy: UnsafePointer<Float>, w: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                 batch: Int, pieces: Int, epilogue: ConvKernels.Epilogue?) -> [ConvKernels.Task] {
        let g = s.geometry, co = s.outChannels, padded = vectors(co) * 16
        let (rows, columns) = AxisTaps.of(g)
        let kw = g.kernel.width, width = g.output.width
        let whole = co / 16, tail = co - 16 * whole
        let chunk = epilogueExamples(outputPerExample: s.inSize)
        return ImageKernels.exampleRanges(batch, pieces).map { examples in
            let scratch = Scratch(s.taps * padded)
            let wt = scratch.base
            return { thread in
                tapMajor(w, s, padded: padded, into: wt)
                for first in stride(from: examples.lowerBound, to: examples.upperBound, by: chunk) {
                    let part = first..<min(first + chunk, examples.upperBound)
                    for n in part {
                        let gradient = dy + n * s.outSize
                        var out = dx + n * s.inPixels
                        for iy in 0..<g.input.height {
                            for ix in 0..<g.input.width {
                                var (acc0, acc1) = (V(), V())
                                let (nr, rp) = rows.adjoint(iy), (nc, cp) = columns.adjoint(ix)
                                for r in 0..<nr {
                                    let (a, oy) = (rp[2 * r], rp[2 * r + 1])
                                    for c in 0..<nc {
                                        let (b, ox) = (cp[2 * c], cp[2 * c + 1])
                                        let up = gradient + (oy * width + ox) * co
                                        let weights = wt + (a * kw + b) * padded
                                        var v = 0
                                        while v + 2 <= whole {
                                            acc0 = acc0.addingProduct(VectorMath.load(up + 16 * v), VectorMath.load(weights + 16 * v))
                                            acc1 = acc1.addingProduct(VectorMath.load(up + 16 * v + 16), VectorMath.load(weights + 16 * v + 16))
                                            v += 2
                                        }
                                        if v < whole {
                                            acc0 = acc0.addingProduct(VectorMath.load(up + 16 * v), VectorMath.load(weights + 16 * v))
                                        }
                                        if tail > 0 {
                                            acc1 = acc1.addingProduct(VectorMath.loadPartial(up + 16 * whole, tail), VectorMath.load(weights + 16 * whole))
                                        }
                                    }
                                }
                                out.pointee = VectorMath.sum(acc0 + acc1)
                                out += 1
                            }
                        }
                    }
                    epilogue?(part, thread)
                }
                withExtendedLifetime(scratch) {}
            }
        }
    }

    /// dw[c, 0, tap] = Σ over examples and output pixels of dy[n, o, c] · x[n, i(o, tap)]. Each task owns
    /// whole vectors of 16 output channels and keeps one accumulator vector per tap (in L1).
    static func conv2dFilter(_ s: ConvShape, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>,
                             batch: Int, pieces: Int) -> [ConvKernels.Task] {
        let g = s.geometry, co = s.outChannels, nv = vectors(co), taps = s.taps
        let (rows, columns) = AxisTaps.of(g)
        let kw = g.kernel.width, width = g.input.width
        return ImageKernels.exampleRanges(nv, pieces).map { group in
            let scratch = Scratch(taps * 16)
            let sums = scratch.base
            return { _ in
                for v in group {
                    let lanes = min(16, co - 16 * v)
                    ConvShape.zero(sums, taps * 16)
                    for n in 0..<batch {
                        let image = x + n * s.inPixels
                        var up = dy + n * s.outSize + 16 * v
                        for oy in 0..<g.output.height {
                            for ox in 0..<g.output.width {
                                let d = lanes == 16 ? VectorMath.load(up) : VectorMath.loadPartial(up, lanes)
                                let (nr, rp) = rows.forward(oy), (nc, cp) = columns.forward(ox)
                                for r in 0..<nr {
                                    let (a, iy) = (rp[2 * r], rp[2 * r + 1])
                                    for c in 0..<nc {
                                        let (b, ix) = (cp[2 * c], cp[2 * c + 1])
                                        let sum = sums + (a * kw + b) * 16
                                        VectorMath.store(VectorMath.load(sum).addingProduct(d, V(repeating: image[iy * width + ix])), sum)
                                    }
                                }
                                up += co
                            }
                        }
                    }
                    for t in 0..<taps {
                        for lane in 0..<lanes { dw[(16 * v + lane) * taps + t] = sums[t * 16 + lane] }
                    }
                }
                withExtendedLifetime(scratch) {}
            }
        }
    }

    @inline(__always) static func store(_ v: V, _ p: UnsafeMutablePointer<Float>, _ lanes: Int) {
        if lanes == 16 { VectorMath.store(v, p) } else { VectorMath.storePartial(v, p, lanes) }
    }
}
