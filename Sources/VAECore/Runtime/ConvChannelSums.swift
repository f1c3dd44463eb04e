/// sum_to_channels: y[C] = Σ over the rows of x[rows, C] (the gradient of a convolution's per-channel
/// bias), as tasks. Tasks own whole 16-channel vectors and read their part of every row, so a channel's
/// sum never depends on the number of tasks (no partial sums to add in a thread-dependent order). Each
/// vector is summed with four accumulators over rows r mod 4 (the adds' latency, not memory, would
/// otherwise bound it), added in a fixed order at the end.
enum ChannelSums {
    typealias V = SIMD16<Float>

    static func tasks(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, channels: Int,
                      pieces: Int) -> [ImageKernels.Task] {
        if channels == 1 { return [{ _ in y.pointee = total(x, rows) }] }
        let vectors = (channels + 15) / 16
        return ImageKernels.exampleRanges(vectors, pieces).map { group in
            { _ in for v in group { sumVector(x, y, rows: rows, channels: channels, vector: v) } }
        }
    }

    /// Channels 16·v ..< 16·v + 16 (fewer for the last vector).
    static func sumVector(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, channels: Int, vector v: Int) {
        let lanes = min(16, channels - 16 * v)
        @inline(__always) func load(_ r: Int) -> V {
            let p = x + r * channels + 16 * v
            return lanes == 16 ? VectorMath.load(p) : VectorMath.loadPartial(p, lanes)
        }
        var (a0, a1, a2, a3) = (V(), V(), V(), V())
        var r = 0
        while r + 4 <= rows {
            a0 += load(r); a1 += load(r + 1); a2 += load(r + 2); a3 += load(r + 3)
            r += 4
        }
        while r < rows { a0 += load(r); r += 1 }
        let sum = (a0 + a1) + (a2 + a3)
        if lanes == 16 { VectorMath.store(sum, y + 16 * v) } else { VectorMath.storePartial(sum, y + 16 * v, lanes) }
    }

    /// Σ of n contiguous floats (one channel).
    static func total(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
        var (a0, a1, a2, a3) = (V(), V(), V(), V())
        var i = 0
        while i + 64 <= n {
            a0 += VectorMath.load(x + i); a1 += VectorMath.load(x + i + 16)
            a2 += VectorMath.load(x + i + 32); a3 += VectorMath.load(x + i + 48)
            i += 64
        }
        while i + 16 <= n { a0 += VectorMath.load(x + i); i += 16 }
        if i < n { a1 += VectorMath.loadPartial(x + i, n - i) }
        return VectorMath.sum((a0 + a1) + (a2 + a3))
    }
}
