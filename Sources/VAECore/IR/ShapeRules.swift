/// The shape rule of every op, in one switch.
public enum ShapeRules {
    public struct Mismatch: Error { public let message: String }

    public static func infer(_ op: Op, _ operands: [Shape]) throws(Mismatch) -> Shape {
        guard operands.count == op.arity else {
            throw Mismatch(message: "\(op.mnemonic) takes \(op.arity) operands, got \(operands.count)")
        }
        switch op {
        case .input, .noise:
            throw Mismatch(message: "\(op.mnemonic) needs its declared shape")
        case .parameter:
            throw Mismatch(message: "param needs its declared shape")
        case .hyper, .constant:
            return .scalar
        case .negate, .exp, .log, .square, .sqrt, .abs, .relu, .sigmoid, .tanh, .softplus, .positiveStep, .sign,
             .logGamma, .digamma, .trigamma, .cbLogNormalizer, .cbLogNormalizerSlope:
            return operands[0]
        case .add, .subtract, .multiply, .divide, .maximum:
            guard let s = Shape.broadcast(operands[0], operands[1]) else {
                throw Mismatch(message: "shapes \(operands[0]) and \(operands[1]) do not match")
            }
            return s
        case .dense:
            let (x, w) = (operands[0], operands[1])
            guard x.batched, x.dims.count == 1, !w.batched, w.dims.count == 2, w.dims[1] == x.dims[0] else {
                throw Mismatch(message: "dense needs x[B,k] and W[n,k], got \(x) and \(w)")
            }
            return Shape(batched: true, [w.dims[0]])
        case .denseTransposed:
            let (dy, w) = (operands[0], operands[1])
            guard dy.batched, dy.dims.count == 1, !w.batched, w.dims.count == 2, w.dims[0] == dy.dims[0] else {
                throw Mismatch(message: "dense_t needs dy[B,n] and W[n,k], got \(dy) and \(w)")
            }
            return Shape(batched: true, [w.dims[1]])
        case .outerSum:
            let (a, x) = (operands[0], operands[1])
            guard a.batched, x.batched, a.dims.count == 1, x.dims.count == 1 else {
                throw Mismatch(message: "outer_sum needs a[B,n] and x[B,k], got \(a) and \(x)")
            }
            return Shape(batched: false, [a.dims[0], x.dims[0]])
        case .sumFeatures:
            return Shape(batched: operands[0].batched, [])
        case .sumBatch:
            guard operands[0].batched else { throw Mismatch(message: "sum_batch needs a batched operand") }
            return Shape(batched: false, operands[0].dims)
        case .broadcast(let target):
            guard Shape.broadcast(operands[0], target) == target else {
                throw Mismatch(message: "cannot broadcast \(operands[0]) to \(target)")
            }
            return target
        }
    }
}
