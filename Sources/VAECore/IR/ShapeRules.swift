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
        case .conv2d(let g):
            let (x, w) = (operands[0], operands[1])
            guard isImage(x, g.input), isWeight(w, g), w.dims[1] == x.dims[2] else {
                throw Mismatch(message: "conv2d \(g) needs x[B,\(g.input),Ci] and W[Co,Ci,\(g.kernel)], got \(x) and \(w)")
            }
            return Shape(batched: true, [g.output.height, g.output.width, w.dims[0]])
        case .conv2dTransposed(let g):
            let (dy, w) = (operands[0], operands[1])
            guard isImage(dy, g.output), isWeight(w, g), w.dims[0] == dy.dims[2] else {
                throw Mismatch(message: "conv2d_t \(g) needs dy[B,\(g.output),Co] and W[Co,Ci,\(g.kernel)], got \(dy) and \(w)")
            }
            return Shape(batched: true, [g.input.height, g.input.width, w.dims[1]])
        case .conv2dFilter(let g):
            let (dy, x) = (operands[0], operands[1])
            guard isImage(dy, g.output), isImage(x, g.input) else {
                throw Mismatch(message: "conv2d_filter \(g) needs dy[B,\(g.output),Co] and x[B,\(g.input),Ci], got \(dy) and \(x)")
            }
            return Shape(batched: false, [dy.dims[2], x.dims[2], g.kernel.height, g.kernel.width])
        case .reshape(let dims):
            guard dims.allSatisfy({ $0 >= 1 }), dims.reduce(1, *) == operands[0].featureCount else {
                throw Mismatch(message: "cannot reshape \(operands[0]) to \(dims)")
            }
            return Shape(batched: operands[0].batched, dims)
        case .channelsFirst, .channelsLast:
            let d = operands[0].dims
            guard d.count == 3 else { throw Mismatch(message: "\(op.mnemonic) needs an image, got \(operands[0])") }
            let moved = op == .channelsFirst ? [d[2], d[0], d[1]] : [d[1], d[2], d[0]]
            return Shape(batched: operands[0].batched, moved)
        case .sumToChannels:
            guard let channels = operands[0].dims.last, operands[0].dims.count >= 2 else {
                throw Mismatch(message: "sum_to_channels needs an image, got \(operands[0])")
            }
            return Shape(batched: false, [channels])
        }
    }

    /// A batch of images of the given height and width (channels-last: [B,H,W,C]).
    private static func isImage(_ s: Shape, _ size: Size2) -> Bool {
        s.batched && s.dims.count == 3 && s.dims[0] == size.height && s.dims[1] == size.width
    }

    /// A convolution weight [Co,Ci,kh,kw] for the geometry's kernel.
    private static func isWeight(_ w: Shape, _ g: ConvGeometry) -> Bool {
        !w.batched && w.dims.count == 4 && w.dims[2] == g.kernel.height && w.dims[3] == g.kernel.width
    }
}
