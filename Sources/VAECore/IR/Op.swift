/// Every operation of the IR. Each concern (shape rule, VJP rule, evaluator, printer) is one exhaustive
/// switch over this enum, so an op added here without its rules does not compile.
public enum Op: Hashable, Codable, Sendable {
    // Leaves.
    /// A batch of the data, named after the model's input.
    case input(String)
    /// A learned tensor, named after the source (see `ParameterSpec`).
    case parameter(String)
    /// Standard normal noise ε for the reparameterised sample of a latent.
    case noise(String)
    /// A scalar set by the runtime before each step: β from its schedule, 1/B for the batch mean, …
    case hyper(String)
    /// A scalar literal.
    case constant(Float)

    // Elementwise, one operand.
    case negate, exp, log, square, sqrt, abs
    case relu, sigmoid, tanh, softplus
    /// 1 where x > 0, else 0: the derivative of relu.
    case positiveStep
    /// −1, 0 or 1: the derivative of abs.
    case sign
    /// log Γ(x), and its derivatives ψ(x) (digamma) and ψ₁(x) (trigamma): the Beta likelihood.
    case logGamma, digamma, trigamma
    /// log C(l) = log(l / tanh(l/2)), the continuous Bernoulli's log-normaliser on logits, and its
    /// derivative 1/l − 1/sinh(l); both stable at and near l = 0 (series there).
    case cbLogNormalizer, cbLogNormalizerSlope

    // Elementwise, two operands, broadcasting (`Shape.broadcast`).
    case add, subtract, multiply, divide
    /// max(a, b) elementwise (free bits: max(λ, KL_j)).
    case maximum

    // Linear algebra on a batch of vectors.
    /// x[B,k] · W[n,k]ᵀ → [B,n]: a linear layer with PyTorch's [out, in] weight layout.
    case dense
    /// dy[B,n] · W[n,k] → [B,k]: the data gradient of `dense`.
    case denseTransposed
    /// Σ_b a[b,n] ⊗ x[b,k] → [n,k]: the weight gradient of `dense`.
    case outerSum

    // Reductions and their adjoint.
    /// Sum over the feature axes: [B,dims] → [B] (or [dims] → []).
    case sumFeatures
    /// Sum over the batch axis: [B,dims] → [dims].
    case sumBatch
    /// Repeat a value to a larger shape: the adjoint of the sums and of broadcasting.
    case broadcast(Shape)

    // Images. An image is stored channels-last: [B,H,W,C] (the language speaks of [C,H,W]; the
    // checker maps one onto the other), so a convolution is a product over the channel axis.
    /// x[B,H,W,Ci] ⊛ W[Co,Ci,kh,kw] → [B,Ho,Wo,Co]: a 2-D convolution (cross-correlation, PyTorch's
    /// weight layout), no bias.
    case conv2d(ConvGeometry)
    /// dy[B,Ho,Wo,Co] with W[Co,Ci,kh,kw] → [B,H,W,Ci]: the exact adjoint of `conv2d` in its data
    /// (its data gradient, and the language's transposed convolution).
    case conv2dTransposed(ConvGeometry)
    /// Σ over the batch and the output pixels of dy[B,Ho,Wo,Co] ⊗ the input patch of x[B,H,W,Ci]
    /// → [Co,Ci,kh,kw]: the weight gradient of `conv2d`.
    case conv2dFilter(ConvGeometry)
    /// The same values in the same order under new feature dimensions (the batch axis stays).
    case reshape([Int])
    /// [B,H,W,C] → [B,C,H,W], and back: what `flatten` and `reshape` of an image need, since the
    /// language flattens in [C,H,W] order (PyTorch's) while images are stored channels-last.
    case channelsFirst, channelsLast
    /// Sum over every axis but the last, the batch included: [B,H,W,C] → [C] (the gradient of a
    /// per-channel bias, which broadcasts along the last axis).
    case sumToChannels

    /// The op's name in the IR's text form (`Grammar/ir.ebnf`).
    public var mnemonic: String {
        switch self {
        case .input: return "input"
        case .parameter: return "param"
        case .noise: return "noise"
        case .hyper: return "hyper"
        case .constant: return "const"
        case .negate: return "neg"
        case .exp: return "exp"
        case .log: return "log"
        case .square: return "square"
        case .sqrt: return "sqrt"
        case .abs: return "abs"
        case .relu: return "relu"
        case .sigmoid: return "sigmoid"
        case .tanh: return "tanh"
        case .softplus: return "softplus"
        case .positiveStep: return "step"
        case .sign: return "sign"
        case .logGamma: return "lgamma"
        case .digamma: return "digamma"
        case .trigamma: return "trigamma"
        case .cbLogNormalizer: return "cb_log_norm"
        case .cbLogNormalizerSlope: return "cb_log_norm_slope"
        case .maximum: return "max"
        case .add: return "add"
        case .subtract: return "sub"
        case .multiply: return "mul"
        case .divide: return "div"
        case .dense: return "dense"
        case .denseTransposed: return "dense_t"
        case .outerSum: return "outer_sum"
        case .sumFeatures: return "sum_features"
        case .sumBatch: return "sum_batch"
        case .broadcast: return "broadcast"
        case .conv2d: return "conv2d"
        case .conv2dTransposed: return "conv2d_t"
        case .conv2dFilter: return "conv2d_filter"
        case .reshape: return "reshape"
        case .channelsFirst: return "channels_first"
        case .channelsLast: return "channels_last"
        case .sumToChannels: return "sum_to_channels"
        }
    }

    /// `standalone` ops are never fused: each runs as a kernel of its own (convolutions, layout
    /// changes and the per-channel sum move data in patterns an elementwise register program cannot).
    public enum Kind { case leaf, unary, binary, matrix, reduction, standalone }

    public var kind: Kind {
        switch self {
        case .input, .parameter, .noise, .hyper, .constant: return .leaf
        case .negate, .exp, .log, .square, .sqrt, .abs, .relu, .sigmoid, .tanh, .softplus, .positiveStep, .sign,
             .logGamma, .digamma, .trigamma, .cbLogNormalizer, .cbLogNormalizerSlope:
            return .unary
        case .add, .subtract, .multiply, .divide, .maximum: return .binary
        case .dense, .denseTransposed, .outerSum: return .matrix
        case .sumFeatures, .sumBatch, .broadcast: return .reduction
        case .conv2d, .conv2dTransposed, .conv2dFilter, .reshape, .channelsFirst, .channelsLast, .sumToChannels:
            return .standalone
        }
    }

    public var arity: Int {
        switch kind {
        case .leaf: return 0
        case .unary, .reduction: return 1
        case .binary, .matrix: return 2
        case .standalone:
            switch self {
            case .conv2d, .conv2dTransposed, .conv2dFilter: return 2
            default: return 1
            }
        }
    }

    /// Elementwise ops whose operands commute (hash-consing orders their operands).
    public var isCommutative: Bool { self == .add || self == .multiply || self == .maximum }
}
