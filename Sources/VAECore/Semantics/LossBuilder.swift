import Foundation

/// Assembles the objective from the decoder's likelihood, the analytic KL and the reductions:
///
///     loss = reduce_batch( a · Σ_i −log p(x_i|z) + b · β · Σ_j KL_j )     a = 1 or 1/N, b = 1 or 1/M
///
/// and the metrics every run reports in nats, whatever the weighting (Σ over the batch).
struct LossBuilder {
    var builder: GraphBuilder

    mutating func build(input x: ValueID, likelihood: Likelihood, decoded: ValueID,
                        posterior: (mean: ValueID, logVariance: ValueID), latent: LatentSpec,
                        objective: ObjectiveSpec, line: Int) {
        builder.currentLine = line
        let features = builder.shape(x).featureCount
        let negLogLikelihood = builder.add(.sumFeatures, [negativeLogLikelihood(x, likelihood, decoded)], name: "nll")
        let klPerDimension = analyticKL(posterior, prior: latent.prior)
        let kl = builder.add(.sumFeatures, [klPerDimension], name: "kl")

        let a: Float = objective.reconstruction == .mean ? 1 / Float(features) : 1
        let b: Float = objective.klReduction == .mean ? 1 / Float(latent.featureCount) : 1
        let beta = builder.add(.hyper("beta"), name: "beta")
        var reconstructionTerm = negLogLikelihood
        if a != 1 { reconstructionTerm = builder.binary(.multiply, builder.constant(a), reconstructionTerm) }
        var klWeight = beta
        if b != 1 { klWeight = builder.binary(.multiply, builder.constant(b), klWeight) }
        let perExample = builder.add(.add, [reconstructionTerm, builder.binary(.multiply, klWeight, kl)], name: "loss_per_example")
        var loss = builder.unary(.sumBatch, perExample)
        if objective.batch == .mean {
            loss = builder.binary(.multiply, builder.add(.hyper("1/batch"), name: "1/batch"), loss)
        }
        builder.name(loss, "loss")
        builder.setOutput(OutputName.loss, loss)
        builder.setOutput(OutputName.reconstruction, builder.unary(.sumBatch, negLogLikelihood))
        builder.setOutput(OutputName.kl, builder.unary(.sumBatch, kl))
        builder.setOutput(OutputName.klPerDimension, builder.unary(.sumBatch, klPerDimension))
        builder.setOutput(OutputName.posteriorMean, posterior.mean)
        builder.setOutput(OutputName.posteriorLogVariance, posterior.logVariance)
        builder.setOutput(OutputName.decoderOutput, decoded)
    }

    /// −log p(x|·) per feature.
    mutating func negativeLogLikelihood(_ x: ValueID, _ likelihood: Likelihood, _ parameter: ValueID) -> ValueID {
        switch likelihood {
        case .bernoulli:
            // −(x·l − softplus(l)) = softplus(l) − x·l; softplus is a stable primitive.
            return builder.binary(.subtract, builder.unary(.softplus, parameter), builder.binary(.multiply, x, parameter))
        case .normal(let sigma):
            let scale = Float(1 / (2 * sigma * sigma))
            let offset = Float(Foundation.log(sigma) + 0.5 * Foundation.log(2 * Double.pi))
            let squared = builder.unary(.square, builder.binary(.subtract, x, parameter))
            return builder.binary(.add, builder.binary(.multiply, builder.constant(scale), squared), builder.constant(offset))
        }
    }

    /// KL(N(μ, σ²) ‖ N(m, s²)) per latent dimension: ½((σ² + (μ−m)²)/s² − 1 − log σ² + log s²).
    mutating func analyticKL(_ posterior: (mean: ValueID, logVariance: ValueID), prior: Prior) -> ValueID {
        switch prior {
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
}
