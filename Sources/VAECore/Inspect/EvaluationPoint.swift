import Foundation

/// Where `vaec grad` and `vaec check` evaluate a compiled graph: the parameters, a batch of rows of a
/// data set, the noise ε of the reparameterised sample, and the hyper-parameters the graph reads.
public final class EvaluationPoint {
    public let model: ModelSpec
    public let parameters: ParameterStore
    /// The rows of the data set taken, and their values (row-major, rows × input features).
    public let rows: Range<Int>
    public let input: [Float]
    /// ε, rows × latent features; all zero with `Noise.zero` (z = μ).
    public let noise: [Float]
    public var hypers: [String: Float]
    /// One line saying where the parameters, data and noise came from, for reports.
    public let provenance: String

    public enum Noise: Equatable, Sendable {
        /// Standard normal draws from `RandomSource(seed:)`, in row-major order.
        case seeded(UInt64)
        /// ε = 0, so z = μ: results that another framework can reproduce exactly.
        case zero
        /// Given values (rows × latent features, row-major), e.g. from `--noise FILE.npy`: the same ε
        /// another framework uses.
        case values([Float], source: String)
    }

    public init(model: ModelSpec, parameters: ParameterStore, rows: Range<Int>, input: [Float], noise: Noise,
                hypers: [String: Float], provenance: String) {
        precondition(input.count == rows.count * model.input.featureCount)
        self.model = model
        self.parameters = parameters
        self.rows = rows
        self.input = input
        var epsilon = [Float](repeating: 0, count: rows.count * model.latent.featureCount)
        if case .seeded(let seed) = noise {
            var random = RandomSource(seed: seed)
            epsilon.withUnsafeMutableBufferPointer { random.fillNormal($0.baseAddress!, count: $0.count) }
        }
        if case .values(let values, _) = noise, values.count == epsilon.count { epsilon = values }
        self.noise = epsilon
        self.hypers = hypers
        self.provenance = provenance
    }

    public var batch: Int { rows.count }

    /// The point a user names on the command line: parameters from a checkpoint (or the model's own
    /// initialisation, as `vaec run` draws it), rows of a data set, noise, and the hypers of the step the
    /// checkpoint was saved at (step 0 without one) from the model's β schedule.
    public static func load(model: ModelSpec, checkpoint: String?, data: Dataset, rows: Range<Int>?,
                            noise: Noise) throws -> EvaluationPoint {
        let parameters = ParameterStore(specs: model.parameters)
        var step = 0, epoch = 0
        var origin: String
        if let checkpoint {
            let metadata = try Checkpoint.load(into: parameters, from: checkpoint)
            step = metadata["step"].flatMap { Int($0) } ?? 0
            epoch = metadata["epoch"].flatMap { Int($0) } ?? 0
            origin = "parameters from \(checkpoint) (epoch \(epoch), step \(step))"
        } else {
            var random = RandomSource(seed: model.train.seed)
            parameters.initialize(random: &random)
            origin = "parameters at initialisation (seed \(model.train.seed))"
        }
        let taken = rows ?? 0..<min(model.train.batch, data.count)
        guard taken.lowerBound >= 0, taken.upperBound <= data.count, !taken.isEmpty else {
            throw VAECError.usage("rows \(taken.lowerBound):\(taken.upperBound) are not within the \(data.count) rows of \(data.path)")
        }
        var input = [Float](repeating: 0, count: taken.count * data.features)
        input.withUnsafeMutableBufferPointer { data.gather(Array(taken)[...], into: $0.baseAddress!) }

        let stepsPerEpoch = max(1, data.count / model.train.batch)
        let controller = BetaController(schedule: model.objective.beta)
        var hypers = controller.hypers(step: step, epoch: epoch, stepsPerEpoch: stepsPerEpoch,
                                       totalSteps: stepsPerEpoch * model.train.epochs).mapValues { Float($0) }
        hypers["1/batch"] = 1 / Float(taken.count)
        hypers["batch"] = Float(taken.count)
        let cwd = FileManager.default.currentDirectoryPath + "/"
        let shown = data.path.hasPrefix(cwd) ? String(data.path.dropFirst(cwd.count)) : data.path
        origin += "; rows \(taken.lowerBound):\(taken.upperBound) of \(shown)"
        switch noise {
        case .zero: origin += "; noise zero (z = mean)"
        case .seeded(let seed): origin += "; noise seed \(seed)"
        case .values(let values, let source):
            guard values.count == taken.count * model.latent.featureCount else {
                throw VAECError.usage("\(source) holds \(values.count) noise values, but rows \(taken.lowerBound):\(taken.upperBound) need \(taken.count) × \(model.latent.featureCount) = \(taken.count * model.latent.featureCount)")
            }
            origin += "; noise from \(source)"
        }
        return EvaluationPoint(model: model, parameters: parameters, rows: taken, input: input, noise: noise,
                               hypers: hypers, provenance: origin)
    }
}

extension EvaluationPoint {
    /// The data set named by `--data PATH` (relative to the working directory), or the model's training
    /// data (relative to `modelDirectory`) without one. A file the model's train block names (as `data:`
    /// or `test:`) is read with that block's format and scale; any other file by its extension, scaled by
    /// `scale` (default 1). `scale` always wins when given.
    public static func dataset(for model: ModelSpec, path: String?, scale: Double?, modelDirectory: String) throws -> Dataset {
        let workingDirectory = FileManager.default.currentDirectoryPath
        /// An absolute, standardised path, so two spellings of one file compare equal.
        func resolved(_ p: String, in directory: String) -> String {
            var full = p.hasPrefix("/") ? p : (directory as NSString).appendingPathComponent(p)
            if !full.hasPrefix("/") { full = (workingDirectory as NSString).appendingPathComponent(full) }
            return (full as NSString).standardizingPath
        }
        let own = [model.train.data, model.train.test].compactMap { $0 }
        var source: DataSource
        if let path {
            let wanted = resolved(path, in: workingDirectory)
            if let match = own.first(where: { resolved($0.path, in: modelDirectory) == wanted }) {
                source = DataSource(path: wanted, format: match.format, scale: match.scale)
            } else {
                source = DataSource(path: wanted, format: Checker.format(ofPath: path), scale: 1)
            }
        } else {
            guard let data = model.train.data else {
                throw VAECError.usage("model '\(model.name)' has no training data in its train block: pass --data FILE")
            }
            source = DataSource(path: resolved(data.path, in: modelDirectory), format: data.format, scale: data.scale)
        }
        if let scale { source.scale = scale }
        return try Dataset.load(source, relativeTo: modelDirectory, input: model.input)
    }

    /// `rows` examples of uniform noise in [0.01, 0.99] (inside the support of every likelihood), for
    /// checking a gradient when a model's data file is missing.
    public static func syntheticDataset(for model: ModelSpec, rows: Int, seed: UInt64) -> Dataset {
        var random = RandomSource(seed: seed ^ 0xDA7A)
        let values = (0..<rows * model.input.featureCount).map { _ in 0.01 + 0.98 * random.nextUniform() }
        return Dataset(path: "<synthetic data>", count: rows, features: model.input.featureCount, values: values)
    }
}
