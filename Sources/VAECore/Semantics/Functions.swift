/// The functions a `.vae` expression may call, with their signatures.
struct FunctionSignature {
    let name: String
    /// Positional parameters in order; a call may also pass them by name.
    let parameters: [String]
    /// How many of `parameters` must be given.
    let required: Int
    let summary: String
}

enum Functions {
    static let elementwise: [String: Op] = [
        "relu": .relu, "sigmoid": .sigmoid, "tanh": .tanh, "softplus": .softplus,
        "exp": .exp, "log": .log, "sqrt": .sqrt, "square": .square, "abs": .abs,
    ]

    static let linear = FunctionSignature(name: "linear", parameters: ["input", "features", "name"], required: 2,
                                          summary: "linear(input, features) — a dense layer with bias")

    /// A 2-D convolution and its transpose take the same arguments (PyTorch's and Keras's defaults:
    /// stride 1, no padding). Channels are the output's; kernel and stride are `3` or `[3, 3]`.
    static let convolutions: [String: FunctionSignature] = Dictionary(uniqueKeysWithValues: ["conv2d", "conv_transpose2d"].map { name in
        (name, FunctionSignature(name: name, parameters: ["input", "channels", "kernel", "stride", "padding", "name"], required: 3,
                                 summary: "\(name)(input, channels, kernel: 3, stride: 1, padding: valid | same)"))
    })

    /// Layout functions: the same values under another shape, in PyTorch's [C, H, W] order.
    static let flatten = FunctionSignature(name: "flatten", parameters: ["x"], required: 1,
                                           summary: "flatten(x) — an image [C, H, W] as a vector of C·H·W, in PyTorch's order")
    static let reshape = FunctionSignature(name: "reshape", parameters: ["x", "shape"], required: 2,
                                           summary: "reshape(x, [64, 7, 7]) — a vector, or an image [channels, height, width]")

    /// The functions that make a layer with learned parameters, named like `encoder.h.1`.
    static let layers: Set<String> = ["linear", "conv2d", "conv_transpose2d"]

    static func signature(of name: String) -> FunctionSignature? {
        if name == "linear" { return linear }
        if let convolution = convolutions[name] { return convolution }
        if name == "flatten" { return flatten }
        if name == "reshape" { return reshape }
        if elementwise[name] != nil {
            return FunctionSignature(name: name, parameters: ["x"], required: 1, summary: "\(name)(x)")
        }
        return nil
    }

    static var all: [String] { ["linear"] + convolutions.keys.sorted() + ["flatten", "reshape"] + elementwise.keys.sorted() }

    /// Distributions a `~` statement may use, with their parameters.
    static let likelihoodNames = ["bernoulli", "continuous_bernoulli", "normal", "laplace", "beta"]
}

/// Arguments of a call matched to a signature's parameter names.
struct BoundArguments {
    var values: [String: Expression] = [:]
    var labels: [String: SourceRange] = [:]
}

extension Checker {
    /// Matches positional and named arguments to `parameters`; one diagnostic for the first problem.
    func bind(_ call: Call, parameters: [String], required: [String], summary: String) throws(Diagnostic) -> BoundArguments {
        var bound = BoundArguments()
        var position = 0
        for argument in call.arguments {
            if let label = argument.label {
                guard parameters.contains(label.name) else {
                    let hint = closestName(to: label.name, among: parameters).map { "did you mean '\($0)'?" }
                        ?? "\(call.callee.name) takes: \(parameters.joined(separator: ", "))"
                    throw Diagnostic("'\(call.callee.name)' has no argument named '\(label.name)'", at: label.range, hint: hint)
                }
                guard bound.values[label.name] == nil else {
                    throw Diagnostic("argument '\(label.name)' is given twice", at: label.range)
                }
                bound.values[label.name] = argument.value
                bound.labels[label.name] = label.range
            } else {
                guard position < parameters.count else {
                    throw Diagnostic("too many arguments: \(summary)", at: argument.value.range)
                }
                bound.values[parameters[position]] = argument.value
                position += 1
            }
        }
        for name in required where bound.values[name] == nil {
            throw Diagnostic("missing argument '\(name)': \(summary)", at: call.range)
        }
        return bound
    }
}
