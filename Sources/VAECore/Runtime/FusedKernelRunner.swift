/// A fused kernel (`Lowering/KernelProgram.swift`) bound to memory at one batch size: runs its register
/// program over the blocks of one task's rows.
///
/// Registers are `stride` floats of a per-thread register file (in L1). A block holds up to
/// `FusedKernel.blockSize` elements: a segment of one row, or whole rows when rows are short, laid out
/// row after row. Vector loops run over whole SIMD16 vectors (lanes past the block are garbage that is
/// never stored or summed); loads, stores and sums handle the exact length.
final class FusedKernelRunner {
    typealias V = SIMD16<Float>
    /// Floats per register: a block plus one vector of slack for stores of whole vectors past a row.
    static let stride = FusedKernel.blockSize + 16

    let kernel: FusedKernel
    let rows: Int
    let columns: Int
    let blockRows: Int
    let chunkRows: Int
    let chunks: Int
    private let code: [Instruction]
    private let inputs: [UnsafePointer<Float>]
    private let modes: [Broadcast]
    private let stores: [UnsafeMutablePointer<Float>]
    private let rowSums: [UnsafeMutablePointer<Float>]
    private let columnSums: [UnsafeMutablePointer<Float>]
    /// chunks × columns floats per column sum: each task's partial sums, added in task order at the end.
    private let partials: UnsafeMutablePointer<Float>?

    init(_ kernel: FusedKernel, batch: Int, pointer: (ValueID) -> UnsafeMutablePointer<Float>,
         partials: UnsafeMutablePointer<Float>?) {
        self.kernel = kernel
        rows = kernel.domain.batched ? batch : 1
        columns = kernel.domain.featureCount
        blockRows = FusedKernel.blockRows(columns: columns)
        chunkRows = FusedKernel.chunkRows(columns: columns)
        chunks = (rows + chunkRows - 1) / chunkRows
        code = kernel.code
        inputs = kernel.inputs.map { UnsafePointer(pointer($0.value)) }
        modes = kernel.inputs.map(\.mode)
        stores = kernel.stores.map(pointer)
        rowSums = kernel.rowSums.map(pointer)
        columnSums = kernel.columnSums.map(pointer)
        self.partials = partials
        precondition(kernel.columnSums.isEmpty || partials != nil, "internal error: no scratch for column sums")
    }

    /// Runs the rows of task `chunk` with the register file `registers`.
    func run(chunk: Int, registers: UnsafeMutablePointer<Float>) {
        let first = chunk * chunkRows, end = min(rows, first + chunkRows)
        var r = first
        while r < end {
            let h = min(blockRows, end - r)
            var c0 = 0
            while c0 < columns {
                let w = blockRows == 1 ? min(FusedKernel.blockSize, columns - c0) : columns
                block(row: r, rows: h, column: c0, width: w, chunk: chunk, chunkStart: first, registers)
                c0 += w
            }
            r += h
        }
    }

    /// Runs the given whole rows (an epilogue of an image kernel, after each range of examples it
    /// computes): the same blocks and operations per row as `run(chunk:)`, so the same bits. Only for
    /// kernels without column sums (their partials are per chunk).
    func run(rows range: Range<Int>, registers: UnsafeMutablePointer<Float>) {
        precondition(kernel.columnSums.isEmpty, "internal error: a row range of a kernel with column sums")
        var r = range.lowerBound
        while r < range.upperBound {
            let h = min(blockRows, range.upperBound - r)
            var c0 = 0
            while c0 < columns {
                let w = blockRows == 1 ? min(FusedKernel.blockSize, columns - c0) : columns
                block(row: r, rows: h, column: c0, width: w, chunk: 0, chunkStart: r, registers)
                c0 += w
            }
            r += h
        }
    }

    /// Runs every chunk, over the given columns only (an epilogue of a GEMM piece): the same operations
    /// per element and per column sum as the whole kernel, so the same bits. Only for kernels without
    /// per-row sums, over rows of at least half a block.
    func run(columns range: Range<Int>, registers: UnsafeMutablePointer<Float>) {
        precondition(blockRows == 1 && kernel.rowSums.isEmpty, "internal error: a column range of a kernel with row sums")
        for chunk in 0..<chunks {
            let first = chunk * chunkRows, end = min(rows, first + chunkRows)
            for r in first..<end {
                var c0 = range.lowerBound
                while c0 < range.upperBound {
                    let w = min(FusedKernel.blockSize, range.upperBound - c0)
                    block(row: r, rows: 1, column: c0, width: w, chunk: chunk, chunkStart: first, registers)
                    c0 += w
                }
            }
        }
        finish(columns: range)
    }

    /// Adds the tasks' partial column sums in task order.
    func finish() { finish(columns: 0..<columns) }

    private func finish(columns range: Range<Int>) {
        guard let partials else { return }
        for (slot, out) in columnSums.enumerated() {
            let base = partials + slot * chunks * columns
            var c = range.lowerBound
            while c < range.upperBound {
                let n = min(16, range.upperBound - c)
                var acc = n == 16 ? VectorMath.load(base + c) : VectorMath.loadPartial(base + c, n)
                for k in 1..<max(chunks, 1) {
                    let p = base + k * columns + c
                    acc += n == 16 ? VectorMath.load(p) : VectorMath.loadPartial(p, n)
                }
                if n == 16 { VectorMath.store(acc, out + c) } else { VectorMath.storePartial(acc, out + c, n) }
                c += 16
            }
        }
    }

    @inline(__always)
    private func block(row r: Int, rows h: Int, column c0: Int, width w: Int, chunk: Int, chunkStart: Int,
                       _ registers: UnsafeMutablePointer<Float>) {
        let n = h * w
        let vectors = (n + 15) >> 4
        @inline(__always) func reg(_ i: Int) -> UnsafeMutablePointer<Float> { registers + i * Self.stride }
        for instruction in code {
            switch instruction {
            case .load(let d, let input):
                let dst = reg(d), src = inputs[input]
                switch modes[input] {
                case .full: Self.copy(src + r * columns + c0, dst, n)
                case .row: for i in 0..<h { Self.copy(src + c0, dst + i * w, w) }
                case .column: for i in 0..<h { Self.fill(dst + i * w, src[r + i], w) }
                case .scalar: Self.fill(dst, src[0], n)
                case .channel(let period):
                    for i in 0..<h { Self.tile(src, period: period, from: c0, into: dst + i * w, w) }
                }
            case .unary(let op, let d, let s):
                Self.unary(op, reg(d), reg(s), vectors, n)
            case .binary(let op, let d, let a, let b):
                VectorMath.apply(op, reg(a), reg(b), reg(d), vectors: vectors)
            case .softplusSigmoid(let ds, let dg, let s):
                let src = reg(s), softplus = reg(ds), sigmoid = reg(dg)
                for v in 0..<vectors {
                    let (a, b) = VectorMath.softplusAndSigmoid(VectorMath.load(src + 16 * v))
                    VectorMath.store(a, softplus + 16 * v)
                    VectorMath.store(b, sigmoid + 16 * v)
                }
            case .copy(let d, let s):
                let dst = reg(d), src = reg(s)
                for v in 0..<vectors { VectorMath.store(VectorMath.load(src + 16 * v), dst + 16 * v) }
            case .store(let s, let slot):
                Self.copyOut(reg(s), stores[slot] + r * columns + c0, n)
            case .rowSum(let s, let slot):
                let src = reg(s), out = rowSums[slot]
                for i in 0..<h {
                    let total = Self.sum(src + i * w, w)
                    out[r + i] = c0 == 0 ? total : out[r + i] + total
                }
            case .columnSum(let s, let slot):
                let src = reg(s)
                let partial = partials! + (slot * chunks + chunk) * columns + c0
                for i in 0..<h {
                    if r + i == chunkStart { Self.copyOut(src + i * w, partial, w) } else { Self.accumulate(src + i * w, partial, w) }
                }
            }
        }
    }

    // MARK: Vector loops

    /// Memory → register: n floats, never reading past the source; the register may be written past n.
    @inline(__always) static func copy(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 16 <= n { VectorMath.store(VectorMath.load(src + i), dst + i); i += 16 }
        if i < n { VectorMath.store(VectorMath.loadPartial(src + i, n - i), dst + i) }
    }

    /// Register → memory: exactly n floats.
    @inline(__always) static func copyOut(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 16 <= n { VectorMath.store(VectorMath.load(src + i), dst + i); i += 16 }
        if i < n { VectorMath.storePartial(VectorMath.load(src + i), dst + i, n - i) }
    }

    /// dst[0..<n] += src[0..<n], exactly n floats of dst.
    @inline(__always) static func accumulate(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 16 <= n { VectorMath.store(VectorMath.load(dst + i) + VectorMath.load(src + i), dst + i); i += 16 }
        if i < n { VectorMath.storePartial(VectorMath.loadPartial(dst + i, n - i) + VectorMath.load(src + i), dst + i, n - i) }
    }

    /// Memory → register: dst[j] = src[(start + j) mod period] for j < n (a per-channel vector along
    /// an image row), copied one contiguous run of channels at a time.
    @inline(__always) static func tile(_ src: UnsafePointer<Float>, period: Int, from start: Int,
                                       into dst: UnsafeMutablePointer<Float>, _ n: Int) {
        if period == 1 { fill(dst, src[0], n); return }
        var j = 0, p = start % period
        while j < n {
            // `copy` may write up to a vector past the run: the next run or the register's slack.
            let run = min(period - p, n - j)
            copy(src + p, dst + j, run)
            j += run
            p = 0
        }
    }

    @inline(__always) static func fill(_ dst: UnsafeMutablePointer<Float>, _ value: Float, _ n: Int) {
        let v = V(repeating: value)
        var i = 0
        while i < n { VectorMath.store(v, dst + i); i += 16 }
    }

    /// Σ of n floats of a register: 16 lane sums, then the lanes.
    @inline(__always) static func sum(_ src: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = V()
        var i = 0
        while i + 16 <= n { acc += VectorMath.load(src + i); i += 16 }
        if i < n { acc += VectorMath.loadPartial(src + i, n - i) }
        return VectorMath.sum(acc)
    }

    static func unary(_ op: Op, _ d: UnsafeMutablePointer<Float>, _ s: UnsafePointer<Float>, _ vectors: Int, _ n: Int) {
        // Whole vectors (the registers have room); the special functions only on the block's own lanes.
        VectorMath.apply(op, s, d, VectorFunctions.unary(op) == nil ? n : 16 * vectors)
    }
}
