/// What a checked `.vae` file means: its parameters, data, objective and training recipe, plus the
/// IR graph that computes the loss. Everything here is Codable: it is what a `.vaek` file stores.

public struct ParameterSpec: Codable, Sendable, Equatable {
    /// Stable, documented name: `<layer>.weight` ([out, in], PyTorch's layout) or `<layer>.bias`.
    public var name: String
    public var dims: [Int]
    public var initialization: Initialization
    public var count: Int { dims.reduce(1, *) }
}

public enum Initialization: Codable, Sendable, Equatable {
    /// U(−bound, bound): torch.nn.Linear's default for weight and bias is bound = 1/√fan_in.
    case uniform(bound: Float)
    case constant(Float)
}

public struct InputSpec: Codable, Sendable, Equatable {
    public var name: String
    public var dims: [Int]
    public var featureCount: Int { dims.reduce(1, *) }
}

public struct LatentSpec: Codable, Sendable, Equatable {
    public var name: String
    public var dims: [Int]
    public var prior: Prior
    public var featureCount: Int { dims.reduce(1, *) }
}

public enum Prior: Codable, Sendable, Equatable {
    case normal(mean: Double, std: Double)
}

public enum Likelihood: Codable, Sendable, Equatable {
    /// Bernoulli on logits: log p = x·l − softplus(l).
    case bernoulli
    /// Gaussian with a fixed σ: log p = −(x−m)²/(2σ²) − log σ − ½ log 2π.
    case normal(sigma: Double)

    public var summary: String {
        switch self {
        case .bernoulli: return "bernoulli(logits)"
        case .normal(let sigma): return "normal(mean, sigma: \(sigma))"
        }
    }
}

public enum Reduction: String, Codable, Sendable, CaseIterable { case sum, mean }

public enum BetaSchedule: Codable, Sendable, Equatable {
    case constant(Double)

    /// β at a training step (from 0).
    public func beta(atStep step: Int, epoch: Int) -> Double {
        switch self {
        case .constant(let beta): return beta
        }
    }
}

public struct ObjectiveSpec: Codable, Sendable, Equatable {
    /// How the reconstruction term reduces over the input's features.
    public var reconstruction: Reduction = .sum
    /// How the KL term reduces over the latent dimensions.
    public var klReduction: Reduction = .sum
    /// How the per-example losses reduce over the batch (only the gradient's scale depends on it).
    public var batch: Reduction = .mean
    public var beta: BetaSchedule = .constant(1)

    /// β relative to the ELBO that the reductions add up to (domain.md's table): the loss is
    /// a·recon + b·β·KL with a = 1 or 1/N, b = 1 or 1/M, so β_eff = β·b/a.
    public func effectiveBetaFactor(features: Int, latents: Int) -> Double {
        let a = reconstruction == .mean ? 1 / Double(features) : 1
        let b = klReduction == .mean ? 1 / Double(latents) : 1
        return b / a
    }
}

public enum DataFormat: String, Codable, Sendable { case idx, npy, csv }

public struct DataSource: Codable, Sendable, Equatable {
    /// As written in the model file (relative to the model file's folder).
    public var path: String
    public var format: DataFormat
    public var scale: Double
}

public struct OptimizerSpec: Codable, Sendable, Equatable {
    public var learningRate: Double = 1e-3
    public var beta1: Double = 0.9
    public var beta2: Double = 0.999
    public var epsilon: Double = 1e-8
}

public struct TrainSpec: Codable, Sendable, Equatable {
    public var data: DataSource?
    public var test: DataSource?
    public var optimizer = OptimizerSpec()
    public var batch = 128
    public var epochs = 10
    public var seed: UInt64 = 0
}

/// Names of the graph's outputs.
public enum OutputName {
    /// The scalar that is differentiated.
    public static let loss = "loss"
    /// Σ over the batch of −log p(x|z), summed over features: nats, whatever the objective's reductions.
    public static let reconstruction = "reconstruction"
    /// Σ over the batch of KL(q(z|x) ‖ p(z)), summed over latent dimensions: nats.
    public static let kl = "kl"
    /// Σ over the batch of KL per latent dimension ([M]).
    public static let klPerDimension = "kl_per_dim"
    /// The posterior mean and log-variance ([B, M]) and the decoder's distribution parameter ([B, N]).
    public static let posteriorMean = "posterior_mean"
    public static let posteriorLogVariance = "posterior_logvar"
    public static let decoderOutput = "decoder_output"
    public static func gradient(_ parameter: String) -> String { "grad:\(parameter)" }
}

/// A checked model: the meaning of the file and the graph of its loss (forward only; `Compiler` adds
/// the gradient and optimises).
public struct ModelSpec: Codable, Sendable {
    public var name: String
    public var sourcePath: String
    public var sourceText: String
    public var input: InputSpec
    public var latent: LatentSpec
    public var likelihood: Likelihood
    public var parameters: [ParameterSpec]
    public var objective: ObjectiveSpec
    public var train: TrainSpec
    public var graph: Graph
}
