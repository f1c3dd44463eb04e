/// Names the layers (`Functions.layers`: linear and convolutional) of one statement after the source:
/// `encoder.h` when the statement has one layer, `encoder.h.1`, `encoder.h.2`, … in source order when
/// it has several.
struct LayerNamer {
    let base: String
    let total: Int
    var next = 1

    init(base: String, expression: Expression) {
        self.base = base
        self.total = LayerNamer.countLayers(expression)
    }

    mutating func nextName() -> String {
        defer { next += 1 }
        return total <= 1 ? base : "\(base).\(next)"
    }

    static func countLayers(_ e: Expression) -> Int {
        switch e {
        case .number, .string, .name: return 0
        case .negate(let inner, _): return countLayers(inner)
        case .binary(_, let a, let b): return countLayers(a) + countLayers(b)
        case .list(let items, _): return items.reduce(0) { $0 + countLayers($1) }
        case .call(let call):
            let named = call.arguments.contains { $0.label?.name == "name" }
            let own = Functions.layers.contains(call.callee.name) && !named ? 1 : 0
            return own + call.arguments.reduce(0) { $0 + countLayers($1.value) }
        }
    }
}

extension Checker {
    /// Lowers an expression that must produce a tensor (numbers become scalar constants).
    mutating func lowerTensor(_ e: Expression, layer: LayerNamer) throws -> ValueID {
        var namer = layer
        return try lower(e, &namer)
    }

    mutating func lower(_ e: Expression, _ namer: inout LayerNamer) throws -> ValueID {
        switch e {
        case .number(let v, _):
            return builder.constant(Float(v))
        case .string(_, let range):
            throw Diagnostic("a string is not a tensor", at: range)
        case .list(_, let range):
            throw Diagnostic("a list is not a tensor", at: range,
                             hint: "a list gives reshape its shape, reshape(h, [64, 7, 7]), or a convolution its kernel or stride, kernel: [3, 3]")
        case .name(let id):
            switch scope[id.name] {
            case .value(let v): return v
            case .poisoned: throw Poisoned()
            case nil:
                let hint = closestName(to: id.name, among: Array(scope.keys)).map { "did you mean '\($0)'?" }
                throw Diagnostic("unknown name '\(id.name)'", at: id.range, hint: hint)
            }
        case .negate(let inner, _):
            return builder.unary(.negate, try lower(inner, &namer))
        case .binary(let op, let lhs, let rhs):
            let a = try lower(lhs, &namer), b = try lower(rhs, &namer)
            guard Shape.broadcast(builder.shape(a), builder.shape(b)) != nil else {
                throw Diagnostic("shape mismatch: '\(op.rawValue)' between \(ImageLayout.described(builder.shape(a))) and \(ImageLayout.described(builder.shape(b)))",
                                 at: e.range, hint: "elementwise operands need equal shapes (or one a scalar)")
            }
            let irOp: Op = switch op {
            case .add: .add
            case .subtract: .subtract
            case .multiply: .multiply
            case .divide: .divide
            }
            return builder.binary(irOp, a, b)
        case .call(let call):
            return try lowerCall(call, &namer)
        }
    }

    mutating func lowerCall(_ call: Call, _ namer: inout LayerNamer) throws -> ValueID {
        guard let signature = Functions.signature(of: call.callee.name) else {
            let known = Functions.all
            let hint = closestName(to: call.callee.name, among: known).map { "did you mean '\($0)'?" }
                ?? "known functions: \(known.joined(separator: ", "))"
            throw Diagnostic("unknown function '\(call.callee.name)'", at: call.callee.range, hint: hint)
        }
        let args = try bind(call, parameters: signature.parameters,
                            required: Array(signature.parameters.prefix(signature.required)), summary: signature.summary)
        if let op = Functions.elementwise[call.callee.name] {
            return builder.unary(op, try lower(args.values["x"]!, &namer))
        }
        switch call.callee.name {
        case "conv2d", "conv_transpose2d": return try lowerConvolution(call, args, &namer)
        case "flatten": return try lowerFlatten(args, &namer)
        case "reshape": return try lowerReshape(args, &namer)
        default: return try lowerLinear(call, args, &namer)
        }
    }

    /// linear(input, features, name: "…"): x[B,k] · W[n,k]ᵀ + b.
    mutating func lowerLinear(_ call: Call, _ args: BoundArguments, _ namer: inout LayerNamer) throws -> ValueID {
        let input = try lower(args.values["input"]!, &namer)
        let featuresExpr = args.values["features"]!
        guard let features = featuresExpr.constantValue, features >= 1, features == features.rounded(), features <= 16_777_216 else {
            throw Diagnostic("the number of features must be a positive whole number", at: featuresExpr.range)
        }
        let inShape = builder.shape(input)
        guard inShape.batched, inShape.dims.count == 1 else {
            let image = inShape.dims.count == 3
            throw Diagnostic("linear needs a vector of features per example, but its input has shape \(ImageLayout.described(inShape))",
                             at: args.values["input"]!.range,
                             hint: image ? "flatten it first: linear(flatten(…), \(Int(features)))" : nil)
        }
        let fanIn = inShape.dims[0], out = Int(features)
        let layer = try addLayer(call, args, &namer, weight: [out, fanIn], bias: out, fanIn: fanIn)
        return builder.binary(.add, builder.binary(.dense, input, layer.weight), layer.bias)
    }

    /// The parameters of a layer: `<name>.weight` of shape `weight` and `<name>.bias` [bias], both
    /// U(±1/√fan_in) as PyTorch initialises its Linear, Conv2d and ConvTranspose2d. The name is the
    /// call's `name:` or the statement's (`LayerNamer`); the size is checked against `SizeLimits`.
    mutating func addLayer(_ call: Call, _ args: BoundArguments, _ namer: inout LayerNamer,
                           weight: [Int], bias: Int, fanIn: Int) throws -> (weight: ValueID, bias: ValueID) {
        var layerName: String
        if let nameExpr = args.values["name"] {
            guard case .string(let s, let range) = nameExpr else {
                throw Diagnostic("a layer name is a string, as in name: \"fc1\"", at: nameExpr.range)
            }
            guard !s.isEmpty, s.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "." }) else {
                throw Diagnostic("a layer name may hold letters, digits, '_' and '.'", at: range)
            }
            layerName = s
        } else {
            layerName = namer.nextName()
        }
        if parameters.contains(where: { $0.name == "\(layerName).weight" }) {
            throw Diagnostic("a layer named '\(layerName)' already exists", at: call.range)
        }
        // Each dimension is at most 2^24, so only the product can overflow (nil: far over the limit).
        let weights = SizeLimits.product(weight) ?? Int.max
        let total = weights > SizeLimits.maxParameters ? nil : parameters.reduce(weights + bias) { $0 + $1.count }
        guard let total, total <= SizeLimits.maxParameters else {
            throw Diagnostic("this layer would have \(weight.map(String.init).joined(separator: " × ")) weights, bringing the model to \(total.map(String.init) ?? "more than \(SizeLimits.maxParameters)") parameters; vaec's limit is \(SizeLimits.maxParameters)",
                             at: call.range)
        }
        let bound = Float(1 / Double(fanIn).squareRoot())
        parameters.append(ParameterSpec(name: "\(layerName).weight", dims: weight, initialization: .uniform(bound: bound)))
        parameters.append(ParameterSpec(name: "\(layerName).bias", dims: [bias], initialization: .uniform(bound: bound)))
        let w = builder.add(.parameter("\(layerName).weight"), name: "\(layerName).weight", shape: Shape(batched: false, weight))
        let b = builder.add(.parameter("\(layerName).bias"), name: "\(layerName).bias", shape: Shape(batched: false, [bias]))
        return (w, b)
    }

    // MARK: distributions

    mutating func checkPrior(_ call: Call) throws(Diagnostic) -> Prior {
        if call.callee.name == "mixture" {
            let args = try bind(call, parameters: ["components"], required: ["components"], summary: "mixture(components: 10)")
            return .mixture(components: try wholeNumber(args.values["components"]!, "components", range: 1...100))
        }
        guard call.callee.name == "normal" else {
            throw Diagnostic("unknown prior '\(call.callee.name)'", at: call.callee.range,
                             hint: "priors: normal(mean, std), mixture(components: K)")
        }
        let args = try bind(call, parameters: ["mean", "std"], required: [], summary: "normal(mean, std)")
        var mean = 0.0, std = 1.0
        if let e = args.values["mean"] {
            guard let v = e.constantValue else { throw Diagnostic("the prior's mean must be a number", at: e.range) }
            mean = v
        }
        if let e = args.values["std"] {
            guard let v = e.constantValue, v > 0 else { throw Diagnostic("the prior's std must be a positive number", at: e.range) }
            std = v
        }
        return .normal(mean: mean, std: std)
    }

    mutating func checkPosterior(_ call: Call, latent: LatentSpec) throws -> (mean: ValueID, logVariance: ValueID) {
        guard call.callee.name == "normal" else {
            throw Diagnostic("unknown posterior '\(call.callee.name)'", at: call.callee.range,
                             hint: "the encoder's distribution is normal(mean: …, logvar: …)")
        }
        let args = try bind(call, parameters: ["mean", "logvar", "sigma"], required: ["mean"],
                            summary: "normal(mean: …, logvar: …) or normal(mean: …, sigma: …)")
        if args.values["logvar"] != nil && args.values["sigma"] != nil {
            throw Diagnostic("give either logvar or sigma, not both", at: args.labels["sigma"] ?? call.range)
        }
        guard args.values["logvar"] != nil || args.values["sigma"] != nil else {
            throw Diagnostic("missing argument 'logvar' (or 'sigma'): normal(mean: …, logvar: …)", at: call.range)
        }
        let expected = Shape(batched: true, latent.dims)
        func lowered(_ label: String) throws -> ValueID {
            let e = args.values[label]!
            var namer = LayerNamer(base: "encoder.\(latent.name).\(label)", expression: e)
            let v = try lower(e, &namer)
            guard builder.shape(v) == expected else {
                throw Diagnostic("the posterior's \(label) has shape \(ImageLayout.described(builder.shape(v))), but latent '\(latent.name)' is \(expected)",
                                 at: e.range)
            }
            builder.name(v, "encoder.\(latent.name).\(label)")
            return v
        }
        let mean = try lowered("mean")
        if args.values["logvar"] != nil { return (mean, try lowered("logvar")) }
        let sigma = try lowered("sigma")
        let logVariance = builder.add(.multiply, [builder.constant(2), builder.unary(.log, sigma)], name: "encoder.\(latent.name).logvar")
        return (mean, logVariance)
    }

    /// The decoder's `x ~ distribution(…)`: which likelihood, and the IR values of its parameters by
    /// name (`logits`, `mean`, `sigma`/`log_sigma`, `scale`/`log_scale`, `alpha`, `beta`).
    mutating func checkLikelihood(_ call: Call, input: InputSpec) throws -> (likelihood: Likelihood, parameters: [String: ValueID]) {
        let expected = Shape(batched: true, input.storedDims)
        func lowered(_ e: Expression, _ label: String) throws -> ValueID {
            var namer = LayerNamer(base: "decoder.\(input.name).\(label)", expression: e)
            let v = try lower(e, &namer)
            guard builder.shape(v) == expected else {
                throw Diagnostic("the decoder's '\(label)' has shape \(ImageLayout.described(builder.shape(v))), but input '\(input.name)' is \(ImageLayout.described(expected))", at: e.range)
            }
            builder.name(v, "decoder.\(input.name).\(label)")
            return v
        }
        /// A scale argument: a number, `learned`, `learned_per_feature`, `optimal` (Gaussian only) or an expression.
        func scale(_ e: Expression, _ label: String, allowOptimal: Bool) throws -> (ScaleSource, [String: ValueID]) {
            if let v = e.constantValue {
                guard v > 0 else { throw Diagnostic("\(label) must be a positive number", at: e.range) }
                return (.fixed(v), [:])
            }
            if case .name(let id) = e, scope[id.name] == nil {
                let logName = "decoder.\(input.name).log_\(label)"
                switch id.name {
                case "learned", "learned_per_feature":
                    // A per-pixel scale of an image is a parameter in the user's (and PyTorch's) layout,
                    // [C,H,W], so checkpoints read the same everywhere; the graph moves it to the
                    // channels-last layout the decoder's output has.
                    let dims = id.name == "learned" ? [] : input.dims
                    parameters.append(ParameterSpec(name: logName, dims: dims, initialization: .constant(0)))
                    var p = builder.add(.parameter(logName), name: logName, shape: Shape(batched: false, dims))
                    if id.name == "learned_per_feature", input.isImage {
                        p = input.dims[0] == 1 ? builder.unary(.reshape(input.storedDims), p) : builder.unary(.channelsLast, p)
                    }
                    return (id.name == "learned" ? .learned : .learnedPerFeature, ["log_\(label)": p])
                case "optimal" where allowOptimal:
                    return (.optimal, [:])
                default:
                    let words = allowOptimal ? "learned, learned_per_feature, optimal" : "learned, learned_per_feature"
                    throw Diagnostic("unknown name '\(id.name)'", at: id.range,
                                     hint: "\(label) is a positive number, one of \(words), or an expression of the decoder")
                }
            }
            return (.predicted, [label: try lowered(e, label)])
        }
        switch call.callee.name {
        case "bernoulli", "continuous_bernoulli":
            let args = try bind(call, parameters: ["logits"], required: ["logits"], summary: "\(call.callee.name)(logits: …)")
            let logits = try lowered(args.values["logits"]!, "logits")
            return (call.callee.name == "bernoulli" ? .bernoulli : .continuousBernoulli, ["logits": logits])
        case "normal":
            let args = try bind(call, parameters: ["mean", "sigma"], required: ["mean", "sigma"],
                                summary: "normal(mean: …, sigma: 0.1 | learned | learned_per_feature | optimal | expression)")
            let mean = try lowered(args.values["mean"]!, "mean")
            let (source, values) = try scale(args.values["sigma"]!, "sigma", allowOptimal: true)
            return (.normal(sigma: source), values.merging(["mean": mean]) { a, _ in a })
        case "laplace":
            let args = try bind(call, parameters: ["mean", "scale"], required: ["mean", "scale"],
                                summary: "laplace(mean: …, scale: 0.1 | learned | learned_per_feature | expression)")
            let mean = try lowered(args.values["mean"]!, "mean")
            let (source, values) = try scale(args.values["scale"]!, "scale", allowOptimal: false)
            return (.laplace(scale: source), values.merging(["mean": mean]) { a, _ in a })
        case "beta":
            let args = try bind(call, parameters: ["alpha", "beta"], required: ["alpha", "beta"],
                                summary: "beta(alpha: softplus(…), beta: softplus(…))")
            return (.beta, ["alpha": try lowered(args.values["alpha"]!, "alpha"), "beta": try lowered(args.values["beta"]!, "beta")])
        default:
            let hint = closestName(to: call.callee.name, among: Functions.likelihoodNames).map { "did you mean '\($0)'?" }
                ?? "likelihoods: \(Functions.likelihoodNames.joined(separator: ", "))"
            throw Diagnostic("unknown likelihood '\(call.callee.name)'", at: call.callee.range, hint: hint)
        }
    }
}
