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
    /// As declared: [N] for a vector, [C, H, W] (PyTorch's order) for an image.
    public var dims: [Int]
    public var featureCount: Int { dims.reduce(1, *) }

    /// A rank-3 input is an image [channels, height, width].
    public var isImage: Bool { dims.count == 3 }

    /// The dims of the input's IR value (and of the rows the trainer feeds it): as declared, except
    /// that an image is stored channels-last, [H, W, C] (see `Op.conv2d`). Every IR shape built from
    /// the input uses these; every message to the user uses `dims`.
    public var storedDims: [Int] { isImage ? ImageLayout.channelsLast(dims) : dims }
}

public struct LatentSpec: Codable, Sendable, Equatable {
    public var name: String
    public var dims: [Int]
    public var prior: Prior
    public var featureCount: Int { dims.reduce(1, *) }
}

public enum Prior: Codable, Sendable, Equatable {
    case normal(mean: Double, std: Double)
    /// A mixture of K diagonal Gaussians with learned means, log standard deviations and mixture
    /// logits (parameters `prior.mean.k`, `prior.log_std.k`, `prior.logit.k`, k = 1…K). No closed-form
    /// KL: it needs `kl: sampled`.
    case mixture(components: Int)

    /// Parameter names of a mixture's component k (1-based).
    public static func mixtureNames(_ k: Int) -> (mean: String, logStd: String, logit: String) {
        ("prior.mean.\(k)", "prior.log_std.\(k)", "prior.logit.\(k)")
    }
}

/// Where a Gaussian's σ or a Laplace's scale comes from.
public enum ScaleSource: Codable, Sendable, Equatable {
    /// A number written in the model file.
    case fixed(Double)
    /// One learned scalar (a parameter holding its log).
    case learned
    /// One learned value per feature (a parameter [N] holding the logs).
    case learnedPerFeature
    /// An expression of the decoder (the scale itself, per example and feature).
    case predicted
    /// σ-VAE's optimal σ: the batch's RMS error, log σ softly clipped from below at −6.
    case optimal

    public var summary: String {
        switch self {
        case .fixed(let v): return WeightingReport.trim(v)
        case .learned: return "learned"
        case .learnedPerFeature: return "learned_per_feature"
        case .predicted: return "predicted"
        case .optimal: return "optimal"
        }
    }
}

public enum Likelihood: Codable, Sendable, Equatable {
    /// Bernoulli on logits: log p = x·l − softplus(l).
    case bernoulli
    /// Continuous Bernoulli on logits: log p = x·l − softplus(l) + log C(l) (Loaiza-Ganem & Cunningham 2019).
    case continuousBernoulli
    /// Gaussian: log p = −(x−m)²/(2σ²) − log σ − ½ log 2π.
    case normal(sigma: ScaleSource)
    /// Laplace: log p = −|x−m|/s − log 2s.
    case laplace(scale: ScaleSource)
    /// Beta(α, β) on x clamped to [ε, 1−ε].
    case beta

    public var summary: String {
        switch self {
        case .bernoulli: return "bernoulli(logits)"
        case .continuousBernoulli: return "continuous_bernoulli(logits)"
        case .normal(let s): return "normal(mean, sigma: \(s.summary))"
        case .laplace(let s): return "laplace(mean, scale: \(s.summary))"
        case .beta: return "beta(alpha, beta)"
        }
    }

    public var fixedSigma: Double? {
        if case .normal(.fixed(let sigma)) = self { return sigma }
        return nil
    }

    /// The data must lie in [0, 1].
    public var needsUnitInterval: Bool {
        switch self {
        case .bernoulli, .continuousBernoulli, .beta: return true
        case .normal, .laplace: return false
        }
    }
}

public enum Reduction: String, Codable, Sendable, CaseIterable { case sum, mean }

/// How the KL term is computed: in closed form (Gaussian prior), or as log q(z|x) − log p(z) at the
/// sampled z, which works for any prior.
public enum KLEstimator: String, Codable, Sendable { case analytic, sampled }

public struct ObjectiveSpec: Codable, Sendable, Equatable {
    /// How the reconstruction term reduces over the input's features.
    public var reconstruction: Reduction = .sum
    /// How the KL term reduces over the latent dimensions.
    public var klReduction: Reduction = .sum
    /// How the per-example losses reduce over the batch (only the gradient's scale depends on it).
    public var batch: Reduction = .mean
    public var kl: KLEstimator = .analytic
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

/// Turning grey data into binary data for the Bernoulli likelihood: a fixed threshold, or a fresh
/// Bernoulli draw of each pixel every epoch (dynamic binarisation, as in the IWAE paper).
public enum Binarization: Codable, Sendable, Equatable {
    case none
    case threshold(Double)
    case dynamic
}

public struct TrainSpec: Codable, Sendable, Equatable {
    public var binarize: Binarization = .none
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
