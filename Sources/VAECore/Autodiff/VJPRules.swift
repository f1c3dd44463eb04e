/// The vector–Jacobian product of every op, in one switch: given a node and the adjoint of its result,
/// the adjoints of its operands (nil where an operand gets no gradient).
public enum VJPRules {
    public static func pullback(of id: ValueID, adjoint g: ValueID, in b: inout GraphBuilder) -> [ValueID?] {
        let node = b.graph[id]
        let y = id
        let operands = node.operands
        switch node.op {
        case .input, .parameter, .noise, .hyper, .constant:
            return []
        case .positiveStep, .sign:
            return [nil]          // piecewise constant: zero almost everywhere
        case .trigamma, .cbLogNormalizerSlope:
            // Only ever reached when differentiating twice (they are derivatives themselves); vaec
            // differentiates once, so they end the chain.
            return [nil]
        case .logGamma:
            return [b.binary(.multiply, g, b.unary(.digamma, operands[0]))]
        case .digamma:
            return [b.binary(.multiply, g, b.unary(.trigamma, operands[0]))]
        case .cbLogNormalizer:
            return [b.binary(.multiply, g, b.unary(.cbLogNormalizerSlope, operands[0]))]
        case .negate:
            return [b.unary(.negate, g)]
        case .exp:
            return [b.binary(.multiply, g, y)]
        case .log:
            return [b.binary(.divide, g, operands[0])]
        case .square:
            return [b.binary(.multiply, g, b.binary(.multiply, b.constant(2), operands[0]))]
        case .sqrt:
            return [b.binary(.divide, g, b.binary(.multiply, b.constant(2), y))]
        case .abs:
            return [b.binary(.multiply, g, b.unary(.sign, operands[0]))]
        case .relu:
            // relu′(x) = step(x) = step(relu(x)) for every x (NaN included: both are 0). Taken of the
            // output, which the next layer reads anyway, so that the backward pass recomputes the mask
            // where it uses it instead of storing it beside the activation (`Fusion`).
            return [b.binary(.multiply, g, b.unary(.positiveStep, y))]
        case .sigmoid:
            let slope = b.binary(.multiply, y, b.binary(.subtract, b.constant(1), y))
            return [b.binary(.multiply, g, slope)]
        case .tanh:
            let slope = b.binary(.subtract, b.constant(1), b.unary(.square, y))
            return [b.binary(.multiply, g, slope)]
        case .softplus:
            return [b.binary(.multiply, g, b.unary(.sigmoid, operands[0]))]
        case .add:
            return [reduce(g, to: operands[0], &b), reduce(g, to: operands[1], &b)]
        case .subtract:
            return [reduce(g, to: operands[0], &b), reduce(b.unary(.negate, g), to: operands[1], &b)]
        case .multiply:
            return [reduce(b.binary(.multiply, g, operands[1]), to: operands[0], &b),
                    reduce(b.binary(.multiply, g, operands[0]), to: operands[1], &b)]
        case .divide:
            // d(a/b)/da = 1/b; d(a/b)/db = −(a/b)/b.
            let da = b.binary(.divide, g, operands[1])
            let db = b.unary(.negate, b.binary(.divide, b.binary(.multiply, g, y), operands[1]))
            return [reduce(da, to: operands[0], &b), reduce(db, to: operands[1], &b)]
        case .maximum:
            // The gradient goes to the larger operand (to b on ties: step(a − b) is 0 at a = b).
            let aWins = b.unary(.positiveStep, b.binary(.subtract, operands[0], operands[1]))
            let toA = b.binary(.multiply, g, aWins)
            let toB = b.binary(.subtract, g, toA)
            return [reduce(toA, to: operands[0], &b), reduce(toB, to: operands[1], &b)]
        case .dense:
            let (x, w) = (operands[0], operands[1])
            return [b.binary(.denseTransposed, g, w), b.binary(.outerSum, g, x)]
        case .denseTransposed:
            let (dy, w) = (operands[0], operands[1])
            return [b.binary(.dense, g, w), b.binary(.outerSum, dy, g)]
        case .outerSum:
            let (a, x) = (operands[0], operands[1])
            return [b.binary(.dense, x, g), b.binary(.denseTransposed, a, g)]
        case .sumFeatures, .sumBatch:
            return [b.add(.broadcast(b.shape(operands[0])), [g])]
        case .broadcast:
            return [reduce(g, to: operands[0], &b)]
        // The convolution trio mirrors the dense trio: each one's pullbacks are the other two.
        case .conv2d(let geometry):
            let (x, w) = (operands[0], operands[1])
            return [b.binary(.conv2dTransposed(geometry), g, w), b.binary(.conv2dFilter(geometry), g, x)]
        case .conv2dTransposed(let geometry):
            let (dy, w) = (operands[0], operands[1])
            return [b.binary(.conv2d(geometry), g, w), b.binary(.conv2dFilter(geometry), dy, g)]
        case .conv2dFilter(let geometry):
            let (dy, x) = (operands[0], operands[1])
            return [b.binary(.conv2d(geometry), x, g), b.binary(.conv2dTransposed(geometry), dy, g)]
        case .reshape:
            return [b.unary(.reshape(b.shape(operands[0]).dims), g)]
        case .channelsFirst:
            return [b.unary(.channelsLast, g)]
        case .channelsLast:
            return [b.unary(.channelsFirst, g)]
        case .sumToChannels:
            return [b.add(.broadcast(b.shape(operands[0])), [g])]
        }
    }

    /// Sums an adjoint down to the shape of the operand it belongs to (the adjoint of broadcasting).
    static func reduce(_ g: ValueID, to operand: ValueID, _ b: inout GraphBuilder) -> ValueID {
        let target = b.shape(operand)
        var value = g
        if b.shape(value).dims != target.dims {
            if target.isChannelVector(of: b.shape(value)) { return b.unary(.sumToChannels, value) }
            precondition(target.dims.isEmpty, "only [] and [C] broadcast over features")
            value = b.unary(.sumFeatures, value)
        }
        if b.shape(value).batched && !target.batched { value = b.unary(.sumBatch, value) }
        return value
    }
}
