/// The `objective` and `train` blocks: `key: value` settings with known keys.
extension Checker {
    static let objectiveKeys = ["reconstruction", "kl", "kl_reduction", "batch", "beta"]
    static let trainKeys = ["data", "test", "optimizer", "batch", "epochs", "seed", "binarize"]

    mutating func checkObjective(_ block: SettingsBlock, features: Int, latents: Int) -> ObjectiveSpec {
        var objective = ObjectiveSpec()
        for setting in uniqueSettings(block, known: Self.objectiveKeys, blockName: "objective") {
            do throws(Diagnostic) {
                switch setting.key.name {
                case "reconstruction": objective.reconstruction = try reduction(setting.value, "reconstruction")
                case "kl_reduction": objective.klReduction = try reduction(setting.value, "kl_reduction")
                case "batch": objective.batch = try reduction(setting.value, "batch")
                case "kl":
                    guard case .name(let id) = setting.value, let estimator = KLEstimator(rawValue: id.name) else {
                        throw Diagnostic("kl must be 'analytic' or 'sampled'", at: setting.value.range)
                    }
                    objective.kl = estimator
                case "beta": objective.beta = try betaSchedule(setting.value, features: features, latents: latents)
                default: break
                }
            } catch { report(error) }
        }
        return objective
    }

    mutating func checkTrain(_ block: SettingsBlock) -> TrainSpec {
        var train = TrainSpec()
        for setting in uniqueSettings(block, known: Self.trainKeys, blockName: "train") {
            do throws(Diagnostic) {
                switch setting.key.name {
                case "data": train.data = try dataSource(setting.value)
                case "test": train.test = try dataSource(setting.value)
                case "optimizer": train.optimizer = try optimizer(setting.value)
                case "batch": train.batch = try wholeNumber(setting.value, "batch", range: 1...1_000_000)
                case "epochs": train.epochs = try wholeNumber(setting.value, "epochs", range: 0...1_000_000)
                case "binarize": train.binarize = try binarization(setting.value)
                case "seed": train.seed = UInt64(try wholeNumber(setting.value, "seed", range: 0...Int(Int32.max)))
                default: break
                }
            } catch { report(error) }
        }
        return train
    }

    /// The settings of a block with unknown and repeated keys reported (and dropped).
    mutating func uniqueSettings(_ block: SettingsBlock, known: [String], blockName: String) -> [Setting] {
        var seen: Set<String> = []
        var kept: [Setting] = []
        for setting in block.settings {
            let key = setting.key.name
            guard known.contains(key) else {
                let hint = closestName(to: key, among: known).map { "did you mean '\($0)'?" }
                    ?? "\(blockName) settings: \(known.joined(separator: ", "))"
                report(Diagnostic("unknown \(blockName) setting '\(key)'", at: setting.key.range, hint: hint))
                continue
            }
            guard seen.insert(key).inserted else {
                report(Diagnostic("'\(key)' is set twice", at: setting.key.range))
                continue
            }
            kept.append(setting)
        }
        return kept
    }

    func reduction(_ e: Expression, _ what: String) throws(Diagnostic) -> Reduction {
        guard case .name(let id) = e, let r = Reduction(rawValue: id.name) else {
            throw Diagnostic("\(what) must be 'sum' or 'mean'", at: e.range)
        }
        return r
    }

    func wholeNumber(_ e: Expression, _ what: String, range: ClosedRange<Int>) throws(Diagnostic) -> Int {
        guard let v = e.constantValue, v == v.rounded(), v >= Double(range.lowerBound), v <= Double(range.upperBound) else {
            throw Diagnostic("\(what) must be a whole number from \(range.lowerBound) to \(range.upperBound)", at: e.range)
        }
        return Int(v)
    }

    func positiveNumber(_ e: Expression, _ what: String) throws(Diagnostic) -> Double {
        guard let v = e.constantValue, v > 0 else { throw Diagnostic("\(what) must be a positive number", at: e.range) }
        return v
    }

    /// `beta:` — a number or one of the schedule words (BetaSchedule documents each rule).
    func betaSchedule(_ e: Expression, features: Int, latents: Int) throws(Diagnostic) -> BetaSchedule {
        if let v = e.constantValue {
            guard v >= 0 else { throw Diagnostic("beta must not be negative", at: e.range) }
            return .constant(v)
        }
        guard case .call(let call) = e else {
            throw Diagnostic("beta is a number or a schedule", at: e.range, hint: BetaWords.hint)
        }
        guard let signature = BetaWords.signatures[call.callee.name] else {
            let hint = closestName(to: call.callee.name, among: Array(BetaWords.signatures.keys)).map { "did you mean '\($0)'?" }
                ?? BetaWords.hint
            throw Diagnostic("unknown beta schedule '\(call.callee.name)'", at: call.callee.range, hint: hint)
        }
        let args = try bind(call, parameters: signature.parameters, required: Array(signature.parameters.prefix(signature.required)),
                            summary: signature.summary)
        func number(_ name: String, default value: Double? = nil, positive: Bool = false) throws(Diagnostic) -> Double {
            guard let expr = args.values[name] else {
                guard let value else { throw Diagnostic("missing argument '\(name)': \(signature.summary)", at: call.range) }
                return value
            }
            guard let v = expr.constantValue, v >= 0, !(positive && v == 0) else {
                throw Diagnostic("\(name) must be a \(positive ? "positive" : "non-negative") number", at: expr.range)
            }
            return v
        }
        func whole(_ name: String) throws(Diagnostic) -> Int? {
            guard let expr = args.values[name] else { return nil }
            return try wholeNumber(expr, name, range: 1...100_000_000)
        }
        func length() throws(Diagnostic) -> (Int, ScheduleUnit) {
            let steps = try whole("steps"), epochs = try whole("epochs")
            if steps != nil && epochs != nil { throw Diagnostic("give steps or epochs, not both", at: call.range) }
            if let steps { return (steps, .steps) }
            if let epochs { return (epochs, .epochs) }
            throw Diagnostic("missing argument 'steps' (or 'epochs'): \(signature.summary)", at: call.range)
        }
        func choice(_ name: String, _ allowed: [String], default value: String) throws(Diagnostic) -> String {
            guard let expr = args.values[name] else { return value }
            guard case .name(let id) = expr, allowed.contains(id.name) else {
                throw Diagnostic("\(name) must be one of: \(allowed.joined(separator: ", "))", at: expr.range)
            }
            return id.name
        }
        switch call.callee.name {
        case "normalized":
            return .normalized(betaNorm: try number("beta_norm"), features: features, latents: latents)
        case "warmup":
            let (t, unit) = try length()
            return .warmup(max: try number("max", default: 1), length: t, unit: unit)
        case "cyclical":
            let ratio = try number("ratio", default: 0.5, positive: true)
            guard ratio <= 1 else { throw Diagnostic("ratio must be in (0, 1]", at: args.values["ratio"]!.range) }
            let ramp = Ramp(rawValue: try choice("ramp", Ramp.allCases.map(\.rawValue), default: "linear"))!
            let unit = ScheduleUnit(rawValue: try choice("per", ["steps", "epochs"], default: "steps"))!
            return .cyclical(max: try number("max", default: 1), cycles: try whole("cycles") ?? 4, ratio: ratio, ramp: ramp, unit: unit)
        case "capacity":
            let (t, unit) = try length()
            return .capacity(gamma: try number("gamma", positive: true), maxCapacity: try number("max"), length: t, unit: unit)
        case "free_bits":
            return .freeBits(lambda: try number("lambda"), beta: try number("beta", default: 1))
        case "geco":
            let momentum = try number("momentum", default: 0.99)
            guard momentum < 1 else { throw Diagnostic("momentum must be below 1", at: args.values["momentum"]!.range) }
            return .geco(kappa: try number("kappa"), alpha: try number("alpha", default: 1e-3, positive: true),
                         initialLambda: try number("lambda", default: 1, positive: true), momentum: momentum)
        case "pi_control":
            let lo = try number("min", default: 0), hi = try number("max", default: 1)
            guard hi > lo else { throw Diagnostic("max must exceed min", at: call.range) }
            return .piControl(target: try number("target"), kp: try number("kp", default: 0.01),
                              ki: try number("ki", default: 1e-4), minBeta: lo, maxBeta: hi)
        default:
            throw Diagnostic("unknown beta schedule '\(call.callee.name)'", at: call.callee.range)
        }
    }

    func dataSource(_ e: Expression) throws(Diagnostic) -> DataSource {
        if case .string(let path, _) = e {
            return DataSource(path: path, format: Self.format(ofPath: path), scale: 1)
        }
        guard case .call(let call) = e, let format = DataFormat(rawValue: call.callee.name) else {
            throw Diagnostic("data is a file: \"path\", or idx(\"path\", scale: 1/255), npy(…), csv(…)", at: e.range)
        }
        let args = try bind(call, parameters: ["path", "scale"], required: ["path"], summary: "\(format.rawValue)(\"path\", scale: 1/255)")
        guard case .string(let path, _) = args.values["path"]! else {
            throw Diagnostic("the path must be a string", at: args.values["path"]!.range)
        }
        var scale = 1.0
        if let s = args.values["scale"] { scale = try positiveNumber(s, "scale") }
        return DataSource(path: path, format: format, scale: scale)
    }

    /// `binarize: 0.5` (a threshold in (0, 1)) or `binarize: dynamic`.
    func binarization(_ e: Expression) throws(Diagnostic) -> Binarization {
        if case .name(let id) = e, id.name == "dynamic" { return .dynamic }
        guard let v = e.constantValue, v > 0, v < 1 else {
            throw Diagnostic("binarize is a threshold in (0, 1) such as 0.5, or 'dynamic'", at: e.range)
        }
        return .threshold(v)
    }

    static func format(ofPath path: String) -> DataFormat {
        if path.hasSuffix(".npy") { return .npy }
        if path.hasSuffix(".csv") { return .csv }
        return .idx
    }

    func optimizer(_ e: Expression) throws(Diagnostic) -> OptimizerSpec {
        guard case .call(let call) = e, call.callee.name == "adam" else {
            throw Diagnostic("the optimizer is adam(lr: 1e-3)", at: e.range)
        }
        let args = try bind(call, parameters: ["lr", "beta1", "beta2", "eps"], required: [], summary: "adam(lr:, beta1:, beta2:, eps:)")
        var spec = OptimizerSpec()
        if let v = args.values["lr"] { spec.learningRate = try positiveNumber(v, "lr") }
        if let v = args.values["beta1"] { spec.beta1 = try fraction(v, "beta1") }
        if let v = args.values["beta2"] { spec.beta2 = try fraction(v, "beta2") }
        if let v = args.values["eps"] { spec.epsilon = try positiveNumber(v, "eps") }
        return spec
    }

    func fraction(_ e: Expression, _ what: String) throws(Diagnostic) -> Double {
        guard let v = e.constantValue, v >= 0, v < 1 else { throw Diagnostic("\(what) must be in [0, 1)", at: e.range) }
        return v
    }
}

/// The `beta:` schedule words and their arguments.
enum BetaWords {
    static let signatures: [String: FunctionSignature] = [
        "normalized": FunctionSignature(name: "normalized", parameters: ["beta_norm"], required: 1,
                                        summary: "normalized(beta_norm) — β = β_norm·N/M"),
        "warmup": FunctionSignature(name: "warmup", parameters: ["max", "steps", "epochs"], required: 0,
                                    summary: "warmup(max: 1, steps: 1000) or warmup(max: 1, epochs: 5)"),
        "cyclical": FunctionSignature(name: "cyclical", parameters: ["max", "cycles", "ratio", "ramp", "per"], required: 0,
                                      summary: "cyclical(max: 1, cycles: 4, ratio: 0.5, ramp: linear|sigmoid|cosine, per: steps|epochs)"),
        "capacity": FunctionSignature(name: "capacity", parameters: ["gamma", "max", "steps", "epochs"], required: 2,
                                      summary: "capacity(gamma: 1000, max: 25, steps: 10000)"),
        "free_bits": FunctionSignature(name: "free_bits", parameters: ["lambda", "beta"], required: 1,
                                       summary: "free_bits(lambda: 0.5, beta: 1)"),
        "geco": FunctionSignature(name: "geco", parameters: ["kappa", "alpha", "lambda", "momentum"], required: 1,
                                  summary: "geco(kappa: 120, alpha: 1e-3, lambda: 1, momentum: 0.99)"),
        "pi_control": FunctionSignature(name: "pi_control", parameters: ["target", "kp", "ki", "min", "max"], required: 1,
                                        summary: "pi_control(target: 15, kp: 0.01, ki: 1e-4, min: 0, max: 1)"),
    ]
    static let hint = "beta: 1, normalized(0.1), warmup(…), cyclical(…), capacity(…), free_bits(…), geco(…), pi_control(…)"
}
