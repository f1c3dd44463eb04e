import Foundation

/// An export target's failure to express a model: a sentence naming the model file.
public struct ExportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A value of the generated forward code, after vaec's own rewrites: the layer a `linear` call is
/// (named as the checker names it) and `log` stabilised as `StabilizePass` does.
indirect enum PyTerm {
    /// A Python variable bound by the function (the input, the latent).
    case variable(String)
    /// A local of the model file: its Python name and its definition (for looking through it).
    case local(String, PyTerm)
    case number(Double)
    case negate(PyTerm)
    case binary(BinaryOperator, PyTerm, PyTerm)
    /// An elementwise function by its `.vae` name (relu, sigmoid, …, softplus, log).
    case function(String, PyTerm)
    /// A layer with weight and bias (dense or convolutional) applied to its input.
    case layer(LayerPlan, PyTerm)
    /// flatten(x): [B, C, H, W] → [B, C·H·W] in PyTorch's order (vaec's `flatten`); a vector as it is.
    case flatten(PyTerm)
    /// reshape(x, dims): [B, …] → [B, dims…], the values in PyTorch's order.
    case reshape([Int], PyTerm)
    /// A learned tensor used as is (a learned log σ).
    case parameter(String)

    /// The definition behind locals.
    var resolved: PyTerm {
        if case .local(_, let definition) = self { return definition.resolved }
        return self
    }
}

/// How a target spells the forward code's functions and layers.
protocol PythonDialect {
    /// `name(argument)` for a `.vae` elementwise function.
    func function(_ name: String, _ argument: String) -> String
    /// A dense or convolutional layer applied to `input` (padding and cropping included).
    func layer(_ layer: LayerPlan, _ input: String) -> String
    /// [B, C, H, W] → [B, C·H·W], PyTorch's `x.flatten(1)`.
    func flatten(_ input: String) -> String
    /// The array namespace (`torch`, `jnp`): `reshape` is spelled the same in both.
    var arrayModule: String { get }
    func parameter(_ name: String) -> String
}

extension PyTerm {
    /// Python source with the tree's own grouping kept: float arithmetic is not associative, so
    /// `a + (b + c)` keeps its parentheses.
    func render(_ d: PythonDialect) -> String { rendered(d).text }

    private func rendered(_ d: PythonDialect) -> (text: String, precedence: Int) {
        switch self {
        case .variable(let n), .local(let n, _): return (n, 4)
        case .number(let v): return v < 0 ? (Python.number(v), 3) : (Python.number(v), 4)
        case .negate(let inner):
            let r = inner.rendered(d)
            return ("-" + (r.precedence < 3 ? "(\(r.text))" : r.text), 3)
        case .binary(let op, let a, let b):
            let p = (op == .add || op == .subtract) ? 1 : 2
            let l = a.rendered(d), r = b.rendered(d)
            let left = l.precedence < p ? "(\(l.text))" : l.text
            let right = r.precedence <= p ? "(\(r.text))" : r.text
            return ("\(left) \(op.rawValue) \(right)", p)
        case .function(let name, let argument): return (d.function(name, argument.render(d)), 4)
        case .layer(let layer, let input): return (d.layer(layer, input.render(d)), 4)
        case .flatten(let input): return (d.flatten(input.render(d)), 4)
        case .reshape(let dims, let input):
            return ("\(d.arrayModule).reshape(\(input.render(d)), \(Python.tuple([-1] + dims)))", 4)
        case .parameter(let name): return (d.parameter(name), 4)
        }
    }

    /// log(t) as vaec compiles it: log(sigmoid e) = −softplus(−e), log(1 − sigmoid e) = −softplus(e),
    /// log(exp e) = e (`StabilizePass`), looking through locals as the IR does.
    static func stableLog(_ t: PyTerm) -> PyTerm {
        switch t.resolved {
        case .function("sigmoid", let e): return .negate(.function("softplus", .negate(e)))
        case .function("exp", let e): return e
        case .binary(.subtract, let one, let s):
            if case .number(1) = one.resolved, case .function("sigmoid", let e) = s.resolved {
                return .negate(.function("softplus", e))
            }
        default: break
        }
        return .function("log", t)
    }
}

/// One statement of the encoder or decoder, translated.
struct StatementPlan {
    enum Kind {
        /// `name = expression`, with the Python name.
        case assign(String, PyTerm)
        /// The encoder's `z ~ normal(…)`: the posterior's mean and log-variance.
        case posterior(mean: PyTerm, logVariance: PyTerm)
        /// The decoder's `x ~ …`: the likelihood's inputs by the names the loss reads (`logits`, `mean`,
        /// `log_sigma`, `log_scale`, `alpha`, `beta`).
        case likelihood([(label: String, term: PyTerm)])
    }
    var kind: Kind
    var anchor: String
    /// The statement as written, for the comments that echo it.
    var source: String
    /// Comments the exporter adds before the statement (how a convolution's padding is done).
    var notes: [String] = []
}

struct BlockPlan {
    var kind: String            // "encoder" or "decoder"
    var header: String          // "encoder q(z | x)"
    var argument: String        // the Python name of the function's argument
    var statements: [StatementPlan]
}

/// Everything both Python targets generate from: the checked model, its syntax translated to Python
/// terms, its layers, and where each of the model file's comments goes.
struct ExportPlan {
    let model: ModelSpec
    let ast: ModelFile
    let source: SourceFile
    var encoder: BlockPlan
    var decoder: BlockPlan
    var layers: [LayerPlan] = []
    /// The geometry vaec compiled for each convolution layer, by layer name.
    private let geometries: [String: ConvGeometry]
    /// Comments placed on anchors ("model", "input", "latent", "encoder", "encoder.0", …, "objective.beta",
    /// "train.batch"); `unplaced` are those after the last anchor.
    var comments: [String: (before: [String], trailing: String?)] = [:]
    var unplaced: [String] = []
    /// The `objective` and `train` settings as written, by key.
    var settings: [String: String] = [:]

    /// `reserved`: names the target's generated code uses, which user names must not shadow.
    init(result: Compiler.Result, reserved: Set<String>) throws {
        model = result.model
        ast = result.ast
        source = SourceFile(path: result.model.sourcePath, text: result.model.sourceText)
        geometries = Self.convolutionGeometries(result.gradientGraph)
        guard let encoderBlock = ast.encoders.first, let decoderBlock = ast.decoders.first else {
            throw ExportError("\(source.path): the model has no encoder or decoder to export")
        }
        let inputName = Python.name(model.input.name, avoiding: reserved)
        let latentName = Python.name(model.latent.name, avoiding: reserved)
        encoder = BlockPlan(kind: "encoder", header: "", argument: inputName, statements: [])
        decoder = BlockPlan(kind: "decoder", header: "", argument: latentName, statements: [])
        encoder = try translate(encoderBlock, kind: "encoder", argument: inputName, given: model.input.name, reserved: reserved)
        decoder = try translate(decoderBlock, kind: "decoder", argument: latentName, given: model.latent.name, reserved: reserved)
        try checkLayers()
        placeComments(encoderBlock: encoderBlock, decoderBlock: decoderBlock)
    }

    func line(_ range: SourceRange) -> Int { source.location(of: range.start).line }
    func lastLine(_ range: SourceRange) -> Int { source.location(of: max(range.start, range.end - 1)).line }
    func text(_ range: SourceRange) -> String {
        let end = min(range.end, source.bytes.count)
        return String(decoding: source.bytes[min(range.start, end)..<end], as: UTF8.self)
            .split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }

    // MARK: translation (mirrors Checker.lower, Checker.checkPosterior and Checker.checkLikelihood)

    private mutating func translate(_ block: ConditionalBlock, kind: String, argument: String, given: String,
                                    reserved: Set<String>) throws -> BlockPlan {
        var plan = BlockPlan(kind: kind, header: "\(kind) \(block.name.name)(\(block.target.name) | \(block.given.name))",
                             argument: argument, statements: [])
        var scope: [String: PyTerm] = [given: .variable(argument)]
        var taken = reserved.union([argument])
        for (index, statement) in block.statements.enumerated() {
            let anchor = "\(kind).\(index)"
            let layersBefore = layers.count
            switch statement {
            case .assign(let name, let expression):
                var namer = LayerNamer(base: "\(kind).\(name.name)", expression: expression)
                let term = try lower(expression, scope: scope, namer: &namer, statement: name.range.union(expression.range))
                let python = Python.name(name.name, avoiding: taken)
                taken.insert(python)
                scope[name.name] = .local(python, term)
                plan.statements.append(StatementPlan(kind: .assign(python, term), anchor: anchor,
                                                     source: text(name.range.union(expression.range))))
            case .sample(let name, let call):
                let range = name.range.union(call.range)
                let statementKind: StatementPlan.Kind = kind == "encoder"
                    ? try posterior(call, scope: scope, statement: range)
                    : try likelihood(call, scope: scope, statement: range)
                plan.statements.append(StatementPlan(kind: statementKind, anchor: anchor, source: text(range)))
            }
            plan.statements[plan.statements.count - 1].notes = layers[layersBefore...].compactMap(\.paddingNote)
        }
        return plan
    }

    /// Arguments of a call by parameter name (positional ones in order), as `Checker.bind` matches them.
    static func arguments(_ call: Call, _ parameters: [String]) -> [String: Expression] {
        var values: [String: Expression] = [:]
        var position = 0
        for argument in call.arguments {
            if let label = argument.label { values[label.name] = argument.value; continue }
            if position < parameters.count { values[parameters[position]] = argument.value }
            position += 1
        }
        return values
    }

    private mutating func lower(_ e: Expression, scope: [String: PyTerm], namer: inout LayerNamer,
                                statement: SourceRange) throws -> PyTerm {
        switch e {
        case .number(let v, _): return .number(v)
        case .string(_, let range):
            throw ExportError("\(source.path):\(line(range)): a string is not a tensor")
        case .list(_, let range):
            throw ExportError("\(source.path):\(line(range)): a list is not a tensor")
        case .name(let id):
            guard let term = scope[id.name] else { throw ExportError("\(source.path):\(line(id.range)): unknown name '\(id.name)'") }
            return term
        case .negate(let inner, _):
            return .negate(try lower(inner, scope: scope, namer: &namer, statement: statement))
        case .binary(let op, let a, let b):
            let left = try lower(a, scope: scope, namer: &namer, statement: statement)
            return .binary(op, left, try lower(b, scope: scope, namer: &namer, statement: statement))
        case .call(let call):
            let name = call.callee.name
            if Functions.layers.contains(name) { return try layer(call, scope: scope, namer: &namer, statement: statement) }
            if name == "flatten" || name == "reshape" {
                let args = Self.arguments(call, ["x", "shape"])
                guard let x = args["x"] else { throw ExportError("\(source.path):\(line(call.range)): \(name) needs an input") }
                let input = try lower(x, scope: scope, namer: &namer, statement: statement)
                if name == "flatten" { return .flatten(input) }
                guard case .list(let items, _)? = args["shape"] else {
                    throw ExportError("\(source.path):\(line(call.range)): reshape needs a shape, as in reshape(h, [64, 7, 7])")
                }
                let dims = items.compactMap(\.constantValue).map { Int($0) }   // `7 * 7 * 64` as the checker folds it
                guard dims.count == items.count else { throw ExportError("\(source.path):\(line(call.range)): reshape's shape must be numbers") }
                return .reshape(dims, input)
            }
            guard Functions.elementwise[name] != nil, let argument = Self.arguments(call, ["x"])["x"] else {
                throw ExportError("\(source.path):\(line(call.range)): unknown function '\(name)'")
            }
            let inner = try lower(argument, scope: scope, namer: &namer, statement: statement)
            return name == "log" ? PyTerm.stableLog(inner) : .function(name, inner)
        }
    }

    /// linear, conv2d or conv_transpose2d: the layer the checker made, by the name it gave.
    private mutating func layer(_ call: Call, scope: [String: PyTerm], namer: inout LayerNamer, statement: SourceRange) throws -> PyTerm {
        let function = call.callee.name
        let args = Self.arguments(call, Functions.signature(of: function)?.parameters ?? [])
        guard let inputExpression = args["input"] else {
            throw ExportError("\(source.path):\(line(call.range)): \(function) needs an input")
        }
        // The checker lowers the input before it names the layer, so nested layers are numbered
        // inside out; the same order here gives the same names.
        let input = try lower(inputExpression, scope: scope, namer: &namer, statement: statement)
        var name: String
        if case .string(let s, _)? = args["name"] { name = s } else { name = namer.nextName() }
        let weight = model.parameters.first { $0.name == "\(name).weight" }
        let kind: LayerPlan.Kind?
        switch (function, weight?.dims.count, geometries[name]) {
        case ("linear", 2, _): kind = .linear
        case ("conv2d", 4, let g?): kind = .convolution(g)
        case ("conv_transpose2d", 4, let g?): kind = .transposedConvolution(g)
        default: kind = nil
        }
        guard let weight, let kind else {
            throw ExportError("\(source.path):\(line(call.range)): the layer '\(name)' is not among the model's parameters as a \(function)")
        }
        // Weights are [out, in, …] but a transposed convolution's, [in, out, kh, kw] as PyTorch's ConvTranspose2d.
        let (inputs, outputs) = function == "conv_transpose2d" ? (weight.dims[0], weight.dims[1]) : (weight.dims[1], weight.dims[0])
        let plan = LayerPlan(name: name, kind: kind, inputs: inputs, outputs: outputs, source: text(statement))
        layers.append(plan)
        return .layer(plan, input)
    }

    /// Each convolution layer's geometry as the checker compiled it: the op that reads the layer's weight.
    static func convolutionGeometries(_ graph: Graph) -> [String: ConvGeometry] {
        var found: [String: ConvGeometry] = [:]
        for node in graph.nodes {
            let geometry: ConvGeometry
            switch node.op {
            case .conv2d(let g), .conv2dTransposed(let g): geometry = g
            default: continue
            }
            // Forward and gradient ops of one layer share its geometry; the weight is the second operand.
            guard node.operands.count == 2, case .parameter(let weight) = graph[node.operands[1]].op, weight.hasSuffix(".weight") else { continue }
            found[String(weight.dropLast(".weight".count))] = geometry
        }
        return found
    }

    private mutating func lowered(_ e: Expression?, base: String, scope: [String: PyTerm], statement: SourceRange) throws -> PyTerm {
        guard let e else { throw ExportError("\(source.path):\(line(statement)): a distribution argument is missing") }
        var namer = LayerNamer(base: base, expression: e)
        return try lower(e, scope: scope, namer: &namer, statement: statement)
    }

    private mutating func posterior(_ call: Call, scope: [String: PyTerm], statement: SourceRange) throws -> StatementPlan.Kind {
        let args = Self.arguments(call, ["mean", "logvar", "sigma"])
        let base = "encoder.\(model.latent.name)"
        let mean = try lowered(args["mean"], base: "\(base).mean", scope: scope, statement: statement)
        if args["logvar"] != nil {
            return .posterior(mean: mean, logVariance: try lowered(args["logvar"], base: "\(base).logvar", scope: scope, statement: statement))
        }
        // normal(mean:, sigma:): log σ² = 2·log σ.
        let sigma = try lowered(args["sigma"], base: "\(base).sigma", scope: scope, statement: statement)
        return .posterior(mean: mean, logVariance: .binary(.multiply, .number(2), PyTerm.stableLog(sigma)))
    }

    private mutating func likelihood(_ call: Call, scope: [String: PyTerm], statement: SourceRange) throws -> StatementPlan.Kind {
        let base = "decoder.\(model.input.name)"
        func scale(_ source: ScaleSource, _ label: String, _ e: Expression?) throws -> [(String, PyTerm)] {
            switch source {
            case .fixed, .optimal: return []
            case .learned: return [("log_\(label)", .parameter("\(base).log_\(label)"))]
            case .learnedPerFeature:
                // A per-pixel scale of an image is stored [C, H, W], as the decoder's output is here.
                return [("log_\(label)", .parameter("\(base).log_\(label)"))]
            case .predicted:
                return [("log_\(label)", PyTerm.stableLog(try lowered(e, base: "\(base).\(label)", scope: scope, statement: statement)))]
            }
        }
        switch model.likelihood {
        case .bernoulli, .continuousBernoulli:
            let args = Self.arguments(call, ["logits"])
            return .likelihood([("logits", try lowered(args["logits"], base: "\(base).logits", scope: scope, statement: statement))])
        case .normal(let source):
            let args = Self.arguments(call, ["mean", "sigma"])
            let mean = try lowered(args["mean"], base: "\(base).mean", scope: scope, statement: statement)
            return .likelihood([("mean", mean)] + (try scale(source, "sigma", args["sigma"])))
        case .laplace(let source):
            let args = Self.arguments(call, ["mean", "scale"])
            let mean = try lowered(args["mean"], base: "\(base).mean", scope: scope, statement: statement)
            return .likelihood([("mean", mean)] + (try scale(source, "scale", args["scale"])))
        case .beta:
            let args = Self.arguments(call, ["alpha", "beta"])
            return .likelihood([("alpha", try lowered(args["alpha"], base: "\(base).alpha", scope: scope, statement: statement)),
                                ("beta", try lowered(args["beta"], base: "\(base).beta", scope: scope, statement: statement))])
        }
    }

    /// The translation must name exactly the layers the checker made: a mismatch would silently load
    /// a checkpoint into the wrong layers.
    private func checkLayers() throws {
        let made = Set(layers.map(\.name))
        let declared = Set(model.parameters.map(\.name).filter { $0.hasSuffix(".weight") }.map { String($0.dropLast(".weight".count)) })
        guard made == declared else {
            throw ExportError("\(source.path): the exporter named the layers \(made.sorted()), but the checker made \(declared.sorted()); this is a bug in vaec's exporter")
        }
    }

    // MARK: comments

    private mutating func placeComments(encoderBlock: ConditionalBlock, decoderBlock: ConditionalBlock) {
        var anchors: [(key: String, line: Int, last: Int)] = []
        if let name = ast.modelName { anchors.append(("model", line(name.range), line(name.range))) }
        if let input = ast.inputs.first { anchors.append(("input", line(input.name.range), lastLine(input.shape.range))) }
        if let latent = ast.latents.first { anchors.append(("latent", line(latent.name.range), lastLine(latent.prior.range))) }
        for (kind, block) in [("encoder", encoderBlock), ("decoder", decoderBlock)] {
            anchors.append((kind, line(block.keyword), line(block.keyword)))
            for (index, statement) in block.statements.enumerated() {
                let range: SourceRange = switch statement {
                case .assign(let name, let e): name.range.union(e.range)
                case .sample(let name, let call): name.range.union(call.range)
                }
                anchors.append(("\(kind).\(index)", line(range), lastLine(range)))
            }
        }
        for (kind, blocks) in [("objective", ast.objectives), ("train", ast.trains)] {
            guard let block = blocks.first else { continue }
            anchors.append((kind, line(block.keyword), line(block.keyword)))
            for setting in block.settings {
                let range = setting.key.range.union(setting.value.range)
                anchors.append(("\(kind).\(setting.key.name)", line(range), lastLine(range)))
                settings["\(kind).\(setting.key.name)"] = text(range)
            }
        }
        var scanner = SourceComments(source)
        for anchor in anchors.sorted(by: { $0.line < $1.line }) where comments[anchor.key] == nil {
            comments[anchor.key] = scanner.take(line: anchor.line, through: anchor.last)
        }
        unplaced = scanner.takeRest()
    }

    /// The comments for an anchor (none if it has none or is absent).
    func carried(_ key: String) -> (before: [String], trailing: String?) { comments[key] ?? ([], nil) }
}
