import Foundation

/// How an operand of an elementwise op maps onto the result's [rows, columns] layout.
enum Broadcast: Equatable {
    case full          // same shape as the result
    case scalar        // one value
    case row           // one row of `columns` values, repeated for every example
    case column        // one value per example, repeated across the features
    case channel(Int)  // one value per channel, repeating along the last axis (a bias of an image)

    init(_ operand: Shape, to result: Shape) {
        if operand.isChannelVector(of: result) { self = .channel(operand.dims[0]); return }
        let sameFeatures = operand.dims == result.dims
        switch (operand.batched == result.batched, sameFeatures) {
        case (true, true): self = .full
        case (false, true): self = .row
        case (_, false): self = operand.batched ? .column : .scalar
        }
    }
}

struct Operand {
    let pointer: UnsafePointer<Float>
    let mode: Broadcast
    init(_ pointer: UnsafeMutablePointer<Float>, _ mode: Broadcast) { self.pointer = UnsafePointer(pointer); self.mode = mode }

    /// A `.channel` operand tiled out to one whole row of `columns` values, as a `.row` operand.
    func asRow<R>(_ columns: Int, _ body: (Operand) -> R) -> R {
        guard case .channel(let period) = mode else { return body(self) }
        var row = (0..<columns).map { pointer[$0 % period] }
        return row.withUnsafeMutableBufferPointer { body(Operand($0.baseAddress!, .row)) }
    }
}

/// The elementwise evaluators of the plain interpreter: one loop per op.
enum Elementwise {
    /// The same vector functions as the fused kernels, so both give the same bits.
    static func unary(_ op: Op, _ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        VectorMath.apply(op, x, y, n)
    }

    static func binary(_ op: Op, _ a: Operand, _ b: Operand, _ y: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        if case .channel = a.mode { return a.asRow(columns) { binary(op, $0, b, y, rows: rows, columns: columns) } }
        if case .channel = b.mode { return b.asRow(columns) { binary(op, a, $0, y, rows: rows, columns: columns) } }
        if a.mode == .full && b.mode == .full {
            let n = rows * columns, p = a.pointer, q = b.pointer
            switch op {
            case .add: for i in 0..<n { y[i] = p[i] + q[i] }
            case .subtract: for i in 0..<n { y[i] = p[i] - q[i] }
            case .multiply: for i in 0..<n { y[i] = p[i] * q[i] }
            case .divide: for i in 0..<n { y[i] = p[i] / q[i] }
            case .maximum: for i in 0..<n { y[i] = Swift.max(p[i], q[i]) }
            default: preconditionFailure("\(op.mnemonic) is not binary")
            }
            return
        }
        for r in 0..<rows {
            let out = y + r * columns
            let p = rowPointer(a, r, columns), q = rowPointer(b, r, columns)
            let pStride = stride(a), qStride = stride(b)
            switch op {
            case .add: for c in 0..<columns { out[c] = p[c * pStride] + q[c * qStride] }
            case .subtract: for c in 0..<columns { out[c] = p[c * pStride] - q[c * qStride] }
            case .multiply: for c in 0..<columns { out[c] = p[c * pStride] * q[c * qStride] }
            case .divide: for c in 0..<columns { out[c] = p[c * pStride] / q[c * qStride] }
            case .maximum: for c in 0..<columns { out[c] = Swift.max(p[c * pStride], q[c * qStride]) }
            default: preconditionFailure("\(op.mnemonic) is not binary")
            }
        }
    }

    static func broadcast(_ a: Operand, _ y: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        if case .channel = a.mode { return a.asRow(columns) { broadcast($0, y, rows: rows, columns: columns) } }
        for r in 0..<rows {
            let p = rowPointer(a, r, columns), s = stride(a)
            for c in 0..<columns { y[r * columns + c] = p[c * s] }
        }
    }

    @inline(__always) static func rowPointer(_ o: Operand, _ r: Int, _ columns: Int) -> UnsafePointer<Float> {
        switch o.mode {
        case .full: return o.pointer + r * columns
        case .row, .scalar: return o.pointer
        case .column: return o.pointer + r
        case .channel: preconditionFailure("a channel operand is expanded to a row first")
        }
    }

    @inline(__always) static func stride(_ o: Operand) -> Int {
        switch o.mode {
        case .full, .row: return 1
        case .scalar, .column: return 0
        case .channel: preconditionFailure("a channel operand is expanded to a row first")
        }
    }
}

/// Sums in a fixed order, so results do not depend on the thread count.
enum Reductions {
    static func sumRows(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        for r in 0..<rows {
            var s: Float = 0
            let p = x + r * columns
            for c in 0..<columns { s += p[c] }
            y[r] = s
        }
    }

    static func sumColumns(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        for c in 0..<columns { y[c] = 0 }
        for r in 0..<rows {
            let p = x + r * columns
            for c in 0..<columns { y[c] += p[c] }
        }
    }
}
