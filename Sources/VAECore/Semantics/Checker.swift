/// Name resolution, shape inference and lowering of a parsed `.vae` file to the IR of its loss.
///
/// Errors are collected, one per mistake: a statement that fails binds its name to a poison value, and
/// any later use of a poisoned name fails silently, so a typo does not cascade into a page of errors.
public struct Checker {
    let source: SourceFile
    var diagnostics: [Diagnostic] = []
    var builder = GraphBuilder()
    var parameters: [ParameterSpec] = []

    /// Values visible to the statement being checked.
    var scope: [String: Binding] = [:]

    enum Binding { case value(ValueID), poisoned }
    /// Thrown when an expression uses a name whose definition already failed: no new diagnostic.
    struct Poisoned: Error {}

    init(source: SourceFile) { self.source = source }

    /// Checks a parsed file and lowers it; throws every error found (warnings ride along on success
    /// via `ModelSpec`'s report, see `Compiler`).
    public static func check(_ file: ModelFile, source: SourceFile) throws(CompileFailure) -> ModelSpec {
        var checker = Checker(source: source)
        let spec = checker.checkFile(file)
        let errors = checker.diagnostics.filter { $0.severity == .error }
        if let spec, errors.isEmpty { return spec }
        throw CompileFailure(diagnostics: checker.diagnostics.sorted { $0.range.start < $1.range.start }, source: source)
    }

    mutating func report(_ d: Diagnostic) { diagnostics.append(d) }

    func line(of range: SourceRange) -> Int { source.location(of: range.start).line }

    // MARK: the file

    mutating func checkFile(_ file: ModelFile) -> ModelSpec? {
        let fileStart = SourceRange(0, 0)
        guard let modelName = file.modelName else {
            report(Diagnostic("the file does not name its model", at: fileStart, hint: "start it with 'model NAME'"))
            return nil
        }
        guard let inputDecl = single(file.inputs.map { ($0.name, $0) }, what: "input", at: modelName.range,
                                     example: "input x: [784]") else { return nil }
        guard let latentDecl = single(file.latents.map { ($0.name, $0) }, what: "latent", at: modelName.range,
                                      example: "latent z: [20] ~ normal(0, 1)") else { return nil }
        guard let encoder = single(file.encoders.map { ($0.name, $0) }, what: "encoder", at: modelName.range,
                                   example: "encoder q(z | x) { … }") else { return nil }
        guard let decoder = single(file.decoders.map { ($0.name, $0) }, what: "decoder", at: modelName.range,
                                   example: "decoder p(x | z) { … }") else { return nil }

        for (shape, what) in [(inputDecl.shape, "input"), (latentDecl.shape, "latent")]
        where !SizeLimits.fits(shape.dims, within: SizeLimits.maxFeatures) {
            report(Diagnostic("the \(what) has more than \(SizeLimits.maxFeatures) values per example, more than vaec supports",
                              at: shape.range))
            return nil
        }
        let input = InputSpec(name: inputDecl.name.name, dims: inputDecl.shape.dims)
        var latent = LatentSpec(name: latentDecl.name.name, dims: latentDecl.shape.dims, prior: .normal(mean: 0, std: 1))
        if inputDecl.name.name == latentDecl.name.name {
            report(Diagnostic("the latent cannot share the input's name '\(input.name)'", at: latentDecl.name.range))
            return nil
        }
        if latent.dims.count != 1 {
            report(Diagnostic("a latent must be a vector such as [20]", at: latentDecl.shape.range))
            return nil
        }
        do { latent.prior = try checkPrior(latentDecl.prior) } catch { report(error) }
        if case .mixture(let k) = latent.prior {
            for component in 1...k {
                let names = Prior.mixtureNames(component)
                // Means spread over [−1, 1] so the components start apart; unit spreads; equal weights.
                parameters.append(ParameterSpec(name: names.mean, dims: latent.dims, initialization: .uniform(bound: 1)))
                parameters.append(ParameterSpec(name: names.logStd, dims: latent.dims, initialization: .constant(0)))
                parameters.append(ParameterSpec(name: names.logit, dims: [], initialization: .constant(0)))
            }
        }

        var objective = ObjectiveSpec()
        if file.objectives.count > 1 {
            report(Diagnostic("the model has more than one objective block", at: file.objectives[1].keyword))
        }
        if let block = file.objectives.first {
            objective = checkObjective(block, features: input.featureCount, latents: latent.featureCount)
        }
        if case .mixture = latent.prior {
            if objective.kl == .analytic {
                report(Diagnostic("a mixture prior has no closed-form KL", at: latentDecl.prior.range,
                                  hint: "write 'kl: sampled' in the objective block (a Monte-Carlo KL at the sampled z)"))
                return nil
            }
            if case .freeBits = objective.beta {
                report(Diagnostic("free bits needs a KL per latent dimension, which a mixture prior does not have",
                                  at: latentDecl.prior.range))
                return nil
            }
        }
        var train = TrainSpec()
        if file.trains.count > 1 {
            report(Diagnostic("the model has more than one train block", at: file.trains[1].keyword))
        }
        if let block = file.trains.first { train = checkTrain(block) }

        // The encoder: q(latent | input).
        let x = builder.add(.input(input.name), name: input.name, shape: Shape(batched: true, input.storedDims))
        guard checkSignature(encoder, target: latentDecl.name.name, given: input.name, kind: "encoder") else { return nil }
        scope = [input.name: .value(x)]
        var posterior: (mean: ValueID, logVariance: ValueID)?
        for statement in encoder.statements {
            do {
                switch statement {
                case .assign(let name, let expression):
                    try assign(name, expression, block: "encoder")
                case .sample(let name, let call):
                    builder.currentLine = line(of: name.range)
                    guard name.name == latent.name else {
                        throw Diagnostic("the encoder samples '\(name.name)', but it models the latent '\(latent.name)'", at: name.range)
                    }
                    if posterior != nil { throw Diagnostic("'\(name.name)' is sampled twice", at: name.range) }
                    posterior = try checkPosterior(call, latent: latent)
                }
            } catch let d as Diagnostic { report(d); poison(statement) } catch { poison(statement) }
        }
        guard let posterior else {
            if diagnostics.isEmpty {
                report(Diagnostic("the encoder never samples the latent '\(latent.name)'", at: encoder.name.range,
                                  hint: "add '\(latent.name) ~ normal(mean: …, logvar: …)' to the encoder"))
            }
            return nil
        }

        // The reparameterised sample z = μ + σ·ε.
        builder.currentLine = line(of: latentDecl.name.range)
        let epsilon = builder.add(.noise(latent.name), name: "eps(\(latent.name))", shape: Shape(batched: true, latent.dims))
        let sigma = builder.add(.exp, [builder.binary(.multiply, builder.constant(0.5), posterior.logVariance)],
                                name: "encoder.\(latent.name).sigma")
        let z = builder.add(.add, [posterior.mean, builder.binary(.multiply, sigma, epsilon)], name: latent.name)

        // The decoder: p(input | latent).
        guard checkSignature(decoder, target: input.name, given: latent.name, kind: "decoder") else { return nil }
        scope = [latent.name: .value(z)]
        var modelled: (likelihood: Likelihood, parameters: [String: ValueID])?
        for statement in decoder.statements {
            do {
                switch statement {
                case .assign(let name, let expression):
                    try assign(name, expression, block: "decoder")
                case .sample(let name, let call):
                    builder.currentLine = line(of: name.range)
                    guard name.name == input.name else {
                        throw Diagnostic("the decoder models '\(name.name)', but the model's input is '\(input.name)'", at: name.range)
                    }
                    if modelled != nil { throw Diagnostic("'\(name.name)' is modelled twice", at: name.range) }
                    modelled = try checkLikelihood(call, input: input)
                }
            } catch let d as Diagnostic { report(d); poison(statement) } catch { poison(statement) }
        }
        guard let modelled else {
            if diagnostics.isEmpty {
                report(Diagnostic("the decoder never models the input '\(input.name)'", at: decoder.name.range,
                                  hint: "add '\(input.name) ~ bernoulli(logits: …)' to the decoder"))
            }
            return nil
        }
        guard diagnostics.allSatisfy({ $0.severity != .error }) else { return nil }

        var losses = LossBuilder(builder: builder)
        losses.build(input: x, likelihood: modelled.likelihood, decoded: modelled.parameters,
                     posterior: posterior, noise: epsilon, z: z, latent: latent, objective: objective,
                     line: line(of: file.objectives.first?.keyword ?? decoder.keyword))
        builder = losses.builder

        return ModelSpec(name: modelName.name, sourcePath: source.path, sourceText: source.text, input: input,
                         latent: latent, likelihood: modelled.likelihood, parameters: parameters,
                         objective: objective, train: train, graph: builder.graph)
    }

    /// Exactly one declaration of a kind; a diagnostic for none or several.
    mutating func single<T>(_ items: [(Identifier, T)], what: String, at range: SourceRange, example: String) -> T? {
        if items.isEmpty {
            report(Diagnostic("the model has no \(what) block", at: range, hint: "add one, such as '\(example)'"))
            return nil
        }
        if items.count > 1 {
            report(Diagnostic("the model has more than one \(what); vaec supports one", at: items[1].0.range))
            return nil
        }
        return items[0].1
    }

    mutating func checkSignature(_ block: ConditionalBlock, target: String, given: String, kind: String) -> Bool {
        if block.target.name != target {
            report(Diagnostic("the \(kind) must model '\(target)', not '\(block.target.name)'", at: block.target.range,
                              hint: kind == "encoder" ? "write 'encoder \(block.name.name)(\(target) | \(given))'"
                                                      : "write 'decoder \(block.name.name)(\(target) | \(given))'"))
            return false
        }
        if block.given.name != given {
            report(Diagnostic("the \(kind) must be given '\(given)', not '\(block.given.name)'", at: block.given.range))
            return false
        }
        return true
    }

    mutating func poison(_ statement: Statement) {
        switch statement {
        case .assign(let name, _), .sample(let name, _): scope[name.name] = .poisoned
        }
    }

    mutating func assign(_ name: Identifier, _ expression: Expression, block: String) throws {
        if scope[name.name] != nil {
            throw Diagnostic("'\(name.name)' is already defined in this \(block)", at: name.range)
        }
        builder.currentLine = line(of: name.range)
        let value = try lowerTensor(expression, layer: LayerNamer(base: "\(block).\(name.name)", expression: expression))
        builder.name(value, "\(block).\(name.name)")
        scope[name.name] = .value(value)
    }
}
