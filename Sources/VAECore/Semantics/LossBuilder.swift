import Foundation

/// Assembles the objective from the decoder's likelihood, the KL term and the reductions:
///
///     loss = reduce_batch( w·a·Σ_i −log p(x_i|z) + β·b·Σ_j KL_j )  [+ batch-level terms]
///
/// a = 1 or 1/N and b = 1 or 1/M (the reductions), w = 1 except under GECO (λ), and the batch-level
/// terms of capacity annealing and free bits. It also adds the metrics every run reports in nats,
/// whatever the weighting (Σ over the batch).
struct LossBuilder {
    var builder: GraphBuilder

    mutating func build(input x: ValueID, likelihood: Likelihood, decoded: [String: ValueID],
                        posterior: (mean: ValueID, logVariance: ValueID), noise: ValueID, z: ValueID,
                        latent: LatentSpec, objective: ObjectiveSpec, line: Int) {
        builder.currentLine = line
        let features = builder.shape(x).featureCount
        let negLogLikelihood = builder.add(.sumFeatures, [negativeLogLikelihood(x, likelihood, decoded)], name: "nll")
        let klPerDimension = objective.kl == .analytic
            ? analyticKL(posterior, prior: latent.prior)
            : sampledKL(posterior, noise: noise, z: z, prior: latent.prior)
        let kl = builder.add(.sumFeatures, [klPerDimension], name: "kl")

        let a: Float = objective.reconstruction == .mean ? 1 / Float(features) : 1
        let b: Float = objective.klReduction == .mean ? 1 / Float(latent.featureCount) : 1
        let beta = builder.add(.hyper("beta"), name: "beta")
        let inverseBatch = builder.add(.hyper("1/batch"), name: "1/batch")
        func scaled(_ c: Float, _ v: ValueID) -> ValueID { c == 1 ? v : builder.binary(.multiply, builder.constant(c), v) }
        func batchMean(_ v: ValueID) -> ValueID { builder.binary(.multiply, inverseBatch, builder.unary(.sumBatch, v)) }

        var reconstructionTerm = scaled(a, negLogLikelihood)
        if case .geco = objective.beta {
            reconstructionTerm = builder.binary(.multiply, builder.add(.hyper("recon_weight"), name: "lambda"), reconstructionTerm)
        }
        var meanLoss: ValueID
        switch objective.beta {
        case .capacity(let gamma, _, _, _):
            // γ·|b·KL̄ − C(t)| on the batch-mean KL (Burgess et al.).
            let klMean = scaled(b, batchMean(kl))
            let gap = builder.unary(.abs, builder.binary(.subtract, klMean, builder.add(.hyper("capacity"), name: "capacity")))
            meanLoss = builder.binary(.add, batchMean(reconstructionTerm), builder.binary(.multiply, builder.constant(Float(gamma)), gap))
        case .freeBits(let lambda, _):
            // β·b·Σ_j max(λ, batch-mean KL_j) (Kingma et al.).
            let perDimensionMean = batchMean(klPerDimension)
            let floored = builder.binary(.maximum, builder.constant(Float(lambda)), perDimensionMean)
            let term = builder.binary(.multiply, beta, scaled(b, builder.unary(.sumFeatures, floored)))
            meanLoss = builder.binary(.add, batchMean(reconstructionTerm), term)
        default:
            let perExample = builder.add(.add, [reconstructionTerm, builder.binary(.multiply, scaled(b, beta), kl)], name: "loss_per_example")
            meanLoss = batchMean(perExample)
        }
        if objective.batch == .sum {
            meanLoss = builder.binary(.multiply, builder.add(.hyper("batch"), name: "batch"), meanLoss)
        }
        builder.name(meanLoss, "loss")
        builder.setOutput(OutputName.loss, meanLoss)
        builder.setOutput(OutputName.reconstruction, builder.unary(.sumBatch, negLogLikelihood))
        builder.setOutput(OutputName.kl, builder.unary(.sumBatch, kl))
        builder.setOutput(OutputName.klPerDimension, builder.unary(.sumBatch, klPerDimension))
        builder.setOutput(OutputName.posteriorMean, posterior.mean)
        builder.setOutput(OutputName.posteriorLogVariance, posterior.logVariance)
        builder.setOutput(OutputName.decoderOutput, displayValue(likelihood, decoded))
    }

    /// What pictures show for a decoded example: the logits for the Bernoulli kinds (the runtime maps
    /// them to the distribution's mean), the mean otherwise (α/(α+β) for the Beta).
    mutating func displayValue(_ likelihood: Likelihood, _ decoded: [String: ValueID]) -> ValueID {
        switch likelihood {
        case .bernoulli, .continuousBernoulli: return decoded["logits"]!
        case .normal, .laplace: return decoded["mean"]!
        case .beta:
            let (alpha, beta) = (decoded["alpha"]!, decoded["beta"]!)
            return builder.binary(.divide, alpha, builder.binary(.add, alpha, beta))
        }
    }

    /// −log p(x|·) per feature.
    mutating func negativeLogLikelihood(_ x: ValueID, _ likelihood: Likelihood, _ p: [String: ValueID]) -> ValueID {
        switch likelihood {
        case .bernoulli:
            // −(x·l − softplus(l)) = softplus(l) − x·l; softplus is a stable primitive.
            let l = p["logits"]!
            return builder.binary(.subtract, builder.unary(.softplus, l), builder.binary(.multiply, x, l))
        case .continuousBernoulli:
            let l = p["logits"]!
            let bernoulli = builder.binary(.subtract, builder.unary(.softplus, l), builder.binary(.multiply, x, l))
            return builder.binary(.subtract, bernoulli, builder.unary(.cbLogNormalizer, l))
        case .normal(let source):
            // ½((x−m)/σ)² + log σ + ½ log 2π, with log σ from the source.
            let residual = builder.binary(.subtract, x, p["mean"]!)
            let squared = builder.unary(.square, residual)
            let logSigma = logScale(source, label: "sigma", p, squaredResidual: squared)
            let inverseVariance = builder.unary(.exp, builder.binary(.multiply, builder.constant(-2), logSigma))
            let quadratic = builder.binary(.multiply, builder.constant(0.5), builder.binary(.multiply, squared, inverseVariance))
            return builder.binary(.add, builder.binary(.add, quadratic, logSigma), builder.constant(Float(0.5 * Foundation.log(2 * Double.pi))))
        case .laplace(let source):
            // |x−m|/s + log 2s.
            let distance = builder.unary(.abs, builder.binary(.subtract, x, p["mean"]!))
            let logScale = logScale(source, label: "scale", p, squaredResidual: nil)
            let scaledDistance = builder.binary(.multiply, distance, builder.unary(.exp, builder.unary(.negate, logScale)))
            return builder.binary(.add, scaledDistance, builder.binary(.add, logScale, builder.constant(Float(Foundation.log(2.0)))))
        case .beta:
            // −[log Γ(α+β) − log Γ(α) − log Γ(β) + (α−1) log x + (β−1) log(1−x)], x clamped to [ε, 1−ε].
            let (alpha, beta) = (p["alpha"]!, p["beta"]!)
            let epsilon: Float = 1e-6
            let low = builder.binary(.maximum, x, builder.constant(epsilon))
            let clamped = builder.unary(.negate, builder.binary(.maximum, builder.unary(.negate, low), builder.constant(-(1 - epsilon))))
            let logX = builder.unary(.log, clamped)
            let logOneMinusX = builder.unary(.log, builder.binary(.subtract, builder.constant(1), clamped))
            let one = builder.constant(1)
            let normaliser = builder.binary(.subtract,
                                            builder.binary(.add, builder.unary(.logGamma, alpha), builder.unary(.logGamma, beta)),
                                            builder.unary(.logGamma, builder.binary(.add, alpha, beta)))
            let kernel = builder.binary(.add,
                                        builder.binary(.multiply, builder.binary(.subtract, alpha, one), logX),
                                        builder.binary(.multiply, builder.binary(.subtract, beta, one), logOneMinusX))
            return builder.binary(.subtract, normaliser, kernel)
        }
    }

    /// log σ (or log s) for a scale source: a constant, a learned parameter (stored as its log), the log
    /// of a decoder expression, or σ-VAE's optimal value.
    mutating func logScale(_ source: ScaleSource, label: String, _ p: [String: ValueID], squaredResidual: ValueID?) -> ValueID {
        switch source {
        case .fixed(let v):
            return builder.constant(Float(Foundation.log(v)))
        case .learned, .learnedPerFeature:
            return p["log_\(label)"]!
        case .predicted:
            return builder.unary(.log, p[label]!)
        case .optimal:
            // σ*² = mean over batch and features of (x−m)²; log σ* = ½ log σ*², softly clipped from below:
            // −6 + softplus(log σ* + 6), as the σ-VAE code does.
            let squared = squaredResidual!
            let perFeature = 1 / Float(builder.shape(squared).featureCount)
            let meanSquare = builder.binary(.multiply, builder.add(.hyper("1/batch"), name: "1/batch"),
                                            builder.binary(.multiply, builder.constant(perFeature),
                                                           builder.unary(.sumBatch, builder.unary(.sumFeatures, squared))))
            let logSigma = builder.binary(.multiply, builder.constant(0.5), builder.unary(.log, meanSquare))
            let shifted = builder.unary(.softplus, builder.binary(.add, logSigma, builder.constant(6)))
            return builder.add(.subtract, [shifted, builder.constant(6)], name: "log_sigma_optimal")
        }
    }

    /// KL(N(μ, σ²) ‖ N(m, s²)) per latent dimension: ½((σ² + (μ−m)²)/s² − 1 − log σ² + log s²).
    mutating func analyticKL(_ posterior: (mean: ValueID, logVariance: ValueID), prior: Prior) -> ValueID {
        switch prior {
        case .mixture:
            preconditionFailure("the checker requires kl: sampled for a mixture prior")
        case .normal(let mean, let std):
            let variance = builder.unary(.exp, posterior.logVariance)
            var centred = posterior.mean
            if mean != 0 { centred = builder.binary(.subtract, centred, builder.constant(Float(mean))) }
            var spread = builder.binary(.add, variance, builder.unary(.square, centred))
            if std != 1 { spread = builder.binary(.multiply, builder.constant(Float(1 / (std * std))), spread) }
            let constant = Float(-1 + 2 * Foundation.log(std))
            let inner = builder.binary(.subtract, builder.binary(.add, spread, builder.constant(constant)), posterior.logVariance)
            return builder.add(.multiply, [builder.constant(0.5), inner], name: "kl_per_dim")
        }
    }

    /// log q(z|x) − log p(z) per latent dimension at the sampled z (a one-sample Monte-Carlo KL).
    /// With z = μ + σε, log q = −½ε² − ½ log σ² − ½ log 2π exactly; the ½ log 2π cancels against log p's.
    mutating func sampledKL(_ posterior: (mean: ValueID, logVariance: ValueID), noise: ValueID, z: ValueID, prior: Prior) -> ValueID {
        switch prior {
        case .mixture(let components):
            return mixtureSampledKL(posterior, noise: noise, z: z, components: components)
        case .normal(let mean, let std):
            let half = builder.constant(0.5)
            let logQ = builder.unary(.negate, builder.binary(.multiply, half,
                                                              builder.binary(.add, builder.unary(.square, noise), posterior.logVariance)))
            var centred = z
            if mean != 0 { centred = builder.binary(.subtract, z, builder.constant(Float(mean))) }
            let logP = builder.binary(.subtract,
                                      builder.unary(.negate, builder.binary(.multiply, builder.constant(Float(0.5 / (std * std))), builder.unary(.square, centred))),
                                      builder.constant(Float(Foundation.log(std))))
            return builder.add(.subtract, [logQ, logP], name: "kl_per_dim")
        }
    }

    /// log q(z|x) − log p(z) for a mixture prior, per latent dimension. The mixture's log-density does not
    /// factorise over dimensions, so its share is split evenly: Σ_j of the result is the exact
    /// one-sample KL, and `kl_per_dim` is an attribution, not a per-dimension KL.
    ///
    ///     log p(z) = logsumexp_k( log π_k + Σ_j log N(z_j; m_kj, s_kj²) ),  log π = logits − logsumexp(logits)
    ///
    /// logsumexp is written with the max trick from `maximum`, `exp` and `log`, so every op is one the
    /// runtime and the VJP rules already have (the max's gradient cancels exactly, as it should).
    mutating func mixtureSampledKL(_ posterior: (mean: ValueID, logVariance: ValueID), noise: ValueID, z: ValueID,
                                   components: Int) -> ValueID {
        let half = builder.constant(0.5)
        let latents = builder.shape(z).featureCount
        let logQ = builder.unary(.negate, builder.binary(.multiply, half,
                                                          builder.binary(.add, builder.unary(.square, noise), posterior.logVariance)))
        var logits: [ValueID] = [], terms: [ValueID] = []
        for k in 1...components {
            let names = Prior.mixtureNames(k)
            let mean = builder.add(.parameter(names.mean), name: names.mean, shape: Shape(batched: false, builder.shape(z).dims))
            let logStd = builder.add(.parameter(names.logStd), name: names.logStd, shape: Shape(batched: false, builder.shape(z).dims))
            let logit = builder.add(.parameter(names.logit), name: names.logit, shape: .scalar)
            // Σ_j −½((z_j − m_kj)/s_kj)² − log s_kj   (the −½ log 2π per dimension cancels against log q's)
            let standardised = builder.binary(.multiply, builder.binary(.subtract, z, mean), builder.unary(.exp, builder.unary(.negate, logStd)))
            let perDimension = builder.binary(.add, builder.binary(.multiply, half, builder.unary(.square, standardised)), logStd)
            terms.append(builder.binary(.add, builder.unary(.negate, builder.unary(.sumFeatures, perDimension)), logit))
            logits.append(logit)
        }
        let logP = builder.add(.subtract, [logSumExp(terms), logSumExp(logits)], name: "log_prior")
        let share = builder.binary(.multiply, builder.constant(1 / Float(latents)), logP)
        return builder.add(.subtract, [logQ, share], name: "kl_per_dim")
    }

    /// log Σ_k exp(v_k) = m + log Σ_k exp(v_k − m), m = max_k v_k.
    mutating func logSumExp(_ values: [ValueID]) -> ValueID {
        guard values.count > 1 else { return values[0] }
        let top = values.dropFirst().reduce(values[0]) { builder.binary(.maximum, $0, $1) }
        let sum = values.map { builder.unary(.exp, builder.binary(.subtract, $0, top)) }.dropFirst()
            .reduce(builder.unary(.exp, builder.binary(.subtract, values[0], top))) { builder.binary(.add, $0, $1) }
        return builder.binary(.add, top, builder.unary(.log, sum))
    }
}
