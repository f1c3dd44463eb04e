/// The convolutions (conv2d, conv2d_t, conv2d_filter) bound to memory as tasks that run side by side,
/// computed as GEMMs on patch matrices (`ConvShape.gather` / `scatterAdd`) with rows = examples × output
/// pixels:
///
///     conv2d        y[rows, Co]       = patches(x)[rows, K] · Wrᵀ[K, Co]
///     conv2d_t      cols[rows, K]     = dy[rows, Co] · Wr[Co, K],  then dx = col2im(cols)
///     conv2d_filter dWr[Co, K]        = Σ over chunks of dy[rows, Co]ᵀ · patches(x)[rows, K]
///
/// (K = kh·kw·Ci in the patch order (a, b, ci); Wr is W in that order). Patches are materialised a
/// chunk of examples at a time into scratch allocated at bind time, sized so a chunk stays in L2
/// between im2col and the GEMM (measured: see `patchBudget`), so memory stays bounded and nothing is
/// allocated per step. A single input channel (the first layer, and the data gradient of a last layer
/// with one output channel) makes K = kh·kw tiny: those run as direct loops (`ConvSingleChannel`).
///
/// Threads. conv2d and conv2d_t cut the batch into one range of examples per task. conv2d_filter, a sum
/// over the examples, cuts the patch columns instead (each task gathers only its columns, so no work
/// is repeated and no partial sums need adding), and sums its chunks in example order with the GEMM's
/// beta = 1. Every value is computed by the same operations whatever the number of tasks (the GEMM's
/// per-element order depends only on k; chunks depend only on the shape), so results are bit-identical
/// for any thread count.
enum ConvKernels {
    /// Floats of patch matrix per chunk (512 KB: half of a core's L2; 64K and 256K measured the same on
    /// the keras conv step).
    static let patchBudget = 131_072

    typealias Task = (_ thread: Int) -> Void
    /// Runs the kernel that follows on examples just computed, on the same thread (see `ImageKernels`).
    typealias Epilogue = (_ examples: Range<Int>, _ thread: Int) -> Void

    static func conv2d(_ s: ConvShape, x: UnsafePointer<Float>, w: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                       batch: Int, pieces: Int, epilogue: Epilogue?, patchBudget: Int) -> [Task] {
        let k = s.patchWidth, co = s.outChannels
        // Both operands in layouts the GEMM reads in place: patches [rows, K] and Wrᵀ [K, Co].
        let ldp = ConvShape.leadingDimension(k), ldw = ConvShape.leadingDimension(co)
        let chunk = s.chunkExamples(budget: patchBudget)
        let patchFloats = s.isPointwise ? 0 : chunk * s.outPixels * ldp
        return ImageKernels.exampleRanges(batch, pieces).map { examples in
            let scratch = Scratch(k * ldw + patchFloats)
            let weights = scratch.base, patches = scratch.base + k * ldw
            return { thread in
                s.reorderWeights(w, into: weights, rowStride: ldw, transposed: true)
                for first in stride(from: examples.lowerBound, to: examples.upperBound, by: chunk) {
                    let part = first..<min(first + chunk, examples.upperBound)
                    let (a, lda): (UnsafePointer<Float>, Int)
                    if s.isPointwise { (a, lda) = (x + first * s.inSize, k) } else {
                        s.gather(x, examples: part, columns: 0..<k, into: patches, rowStride: ldp)
                        (a, lda) = (UnsafePointer(patches), ldp)
                    }
                    GEMM.multiply(transposeA: false, transposeB: false, m: part.count * s.outPixels, n: co, k: k, alpha: 1,
                                  a: a, lda: lda, b: weights, ldb: ldw, beta: 0, c: y + first * s.outSize, ldc: co, threads: 1)
                    epilogue?(part, thread)
                }
                withExtendedLifetime(scratch) {}
            }
        }
    }

    static func conv2dTransposed(_ s: ConvShape, dy: UnsafePointer<Float>, w: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>,
                                 batch: Int, pieces: Int, epilogue: Epilogue?, patchBudget: Int) -> [Task] {
        let k = s.patchWidth, co = s.outChannels
        let ldw = ConvShape.leadingDimension(k)
        // A pointwise kernel's columns are dx itself.
        let ldc = s.isPointwise ? k : ldw
        let chunk = s.chunkExamples(budget: patchBudget)
        let columnFloats = s.isPointwise ? 0 : chunk * s.outPixels * ldc
        return ImageKernels.exampleRanges(batch, pieces).map { examples in
            let scratch = Scratch(co * ldw + columnFloats)
            let weights = scratch.base, columns = scratch.base + co * ldw
            return { thread in
                s.reorderWeights(w, into: weights, rowStride: ldw, transposed: false)
                for first in stride(from: examples.lowerBound, to: examples.upperBound, by: chunk) {
                    let part = first..<min(first + chunk, examples.upperBound)
                    let c = s.isPointwise ? dx + first * s.inSize : columns
                    GEMM.multiply(transposeA: false, transposeB: false, m: part.count * s.outPixels, n: k, k: co, alpha: 1,
                                  a: dy + first * s.outSize, lda: co, b: weights, ldb: ldw, beta: 0, c: c, ldc: ldc, threads: 1)
                    if !s.isPointwise {
                        ConvShape.zero(dx + first * s.inSize, part.count * s.inSize)
                        s.scatterAdd(columns, examples: part, into: dx, rowStride: ldc)
                    }
                    epilogue?(part, thread)
                }
                withExtendedLifetime(scratch) {}
            }
        }
    }

    static func conv2dFilter(_ s: ConvShape, dy: UnsafePointer<Float>, x: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>,
                             batch: Int, pieces: Int, patchBudget: Int) -> [Task] {
        let k = s.patchWidth, co = s.outChannels
        let chunk = s.chunkExamples(budget: patchBudget)
        // Column pieces at multiples of 16 (the GEMM's narrowest panel).
        let parts = max(1, min(pieces, k / 16))
        let bounds = (0...parts).map { p in p == parts ? k : (k * p / parts + 8) / 16 * 16 }
        return (0..<parts).map { p in
            let columns = bounds[p]..<bounds[p + 1], width = columns.count
            let ldp = ConvShape.leadingDimension(width)
            let scratch = Scratch(co * width + (s.isPointwise ? 0 : chunk * s.outPixels * ldp))
            let result = scratch.base, patches = scratch.base + co * width
            return { _ in
                ConvShape.zero(result, co * width)   // the sum over no examples
                for first in stride(from: 0, to: batch, by: chunk) {
                    let part = first..<min(first + chunk, batch)
                    let (b, ldb): (UnsafePointer<Float>, Int)
                    if s.isPointwise { (b, ldb) = (x + first * s.inSize + columns.lowerBound, k) } else {
                        s.gather(x, examples: part, columns: columns, into: patches, rowStride: ldp)
                        (b, ldb) = (UnsafePointer(patches), ldp)
                    }
                    GEMM.multiply(transposeA: true, transposeB: false, m: co, n: width, k: part.count * s.outPixels, alpha: 1,
                                  a: dy + first * s.outSize, lda: co, b: b, ldb: ldb, beta: first == 0 ? 0 : 1,
                                  c: result, ldc: width, threads: 1)
                }
                s.storeWeights(result, columns: columns, into: dw, rowStride: width)
                withExtendedLifetime(scratch) {}
            }
        }
    }
}

/// Scratch memory of a bound kernel: allocated when the kernel is bound, freed with its tasks.
final class Scratch: @unchecked Sendable {
    let base: UnsafeMutablePointer<Float>
    init(_ count: Int) {
        base = .allocate(capacity: max(count, 16))
        base.initialize(repeating: 0, count: max(count, 16))
    }
    deinit { base.deallocate() }
}
