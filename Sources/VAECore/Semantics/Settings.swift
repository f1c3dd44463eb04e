/// The `objective` and `train` blocks: `key: value` settings with known keys.
extension Checker {
    static let objectiveKeys = ["reconstruction", "kl", "kl_reduction", "batch", "beta"]
    static let trainKeys = ["data", "test", "optimizer", "batch", "epochs", "seed"]

    mutating func checkObjective(_ block: SettingsBlock) -> ObjectiveSpec {
        var objective = ObjectiveSpec()
        for setting in uniqueSettings(block, known: Self.objectiveKeys, blockName: "objective") {
            do throws(Diagnostic) {
                switch setting.key.name {
                case "reconstruction": objective.reconstruction = try reduction(setting.value, "reconstruction")
                case "kl_reduction": objective.klReduction = try reduction(setting.value, "kl_reduction")
                case "batch": objective.batch = try reduction(setting.value, "batch")
                case "kl":
                    guard case .name(let id) = setting.value, id.name == "analytic" else {
                        throw Diagnostic("kl must be 'analytic'", at: setting.value.range)
                    }
                case "beta": objective.beta = try betaSchedule(setting.value)
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
        guard let v = constantValue(e), v == v.rounded(), v >= Double(range.lowerBound), v <= Double(range.upperBound) else {
            throw Diagnostic("\(what) must be a whole number from \(range.lowerBound) to \(range.upperBound)", at: e.range)
        }
        return Int(v)
    }

    func positiveNumber(_ e: Expression, _ what: String) throws(Diagnostic) -> Double {
        guard let v = constantValue(e), v > 0 else { throw Diagnostic("\(what) must be a positive number", at: e.range) }
        return v
    }

    func betaSchedule(_ e: Expression) throws(Diagnostic) -> BetaSchedule {
        if let v = constantValue(e) {
            guard v >= 0 else { throw Diagnostic("beta must not be negative", at: e.range) }
            return .constant(v)
        }
        throw Diagnostic("beta must be a number", at: e.range, hint: "for example 'beta: 1'")
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
        guard let v = constantValue(e), v >= 0, v < 1 else { throw Diagnostic("\(what) must be in [0, 1)", at: e.range) }
        return v
    }
}
