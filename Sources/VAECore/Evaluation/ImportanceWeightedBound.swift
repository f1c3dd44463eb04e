import Foundation

/// The importance-weighted bound of Burda et al. (2016), per example:
///
///     log p(x) ≥ L_K = log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x),   z_k ~ q(z|x) = N(μ, diag σ²)
///
/// L_1 is the ELBO (in expectation), L_K rises with K and tends to log p(x). log p(x|z_k) comes from the
/// decoder run at z_k; log p(z) and log q(z|x) are diagonal Gaussians evaluated here in Double, and
/// the mean over k is taken in log space (`LogMeanExp`).
public enum ImportanceWeightedBound {
    /// L_K for each example of `data`. `means` and `logVariances` are the posterior's (rows × latent
    /// features, from the encoder); examples are decoded `chunk` at a time, one decoder run per sample.
    public static func perExample(decoder: Decoder, data: Dataset, means: [Float], logVariances: [Float],
                                  samples: Int, chunk: Int = 500, random: inout RandomSource) throws -> [Double] {
        let model = decoder.model
        let m = model.latent.featureCount, n = model.input.featureCount
        precondition(samples >= 1 && means.count == data.count * m && logVariances.count == means.count)
        guard case .normal(let priorMean, let priorStd) = model.latent.prior else { return [] }
        // log p(z) − log q(z|x) = Σ_j −½u_j² − log s + ½ε_j² + ½ log σ_j² with u = (z − m)/s: the
        // −½ log 2π of each density cancels.
        let logStdTerm = -Double(m) * Foundation.log(priorStd)
        var bounds = [Double](repeating: 0, count: data.count)
        let size = min(chunk, data.count)
        let x = UnsafeMutablePointer<Float>.allocate(capacity: size * n)
        let epsilon = UnsafeMutablePointer<Float>.allocate(capacity: size * m)
        let z = UnsafeMutablePointer<Float>.allocate(capacity: size * m)
        let nll = UnsafeMutablePointer<Double>.allocate(capacity: size)
        defer { x.deallocate(); epsilon.deallocate(); z.deallocate(); nll.deallocate() }

        var first = 0
        while first < data.count {
            let rows = min(size, data.count - first)
            data.gather(Array(first..<first + rows)[...], into: x)
            var accumulators = [LogMeanExp](repeating: LogMeanExp(), count: rows)
            for _ in 0..<samples {
                random.fillNormal(epsilon, count: rows * m)
                var logPriorOverPosterior = [Double](repeating: 0, count: rows)
                for b in 0..<rows {
                    var sum = 0.0
                    for j in 0..<m {
                        let i = (first + b) * m + j
                        let e = epsilon[b * m + j]
                        // z as the graph computes it (Float), so the decoder sees the z that log p(z) scores.
                        let value = means[i] + Float(Foundation.exp(0.5 * Double(logVariances[i]))) * e
                        z[b * m + j] = value
                        let standardised = (Double(value) - priorMean) / priorStd
                        sum += -0.5 * standardised * standardised + 0.5 * Double(e) * Double(e) + 0.5 * Double(logVariances[i])
                    }
                    logPriorOverPosterior[b] = sum + logStdTerm
                }
                try decoder.negativeLogLikelihood(x: x, z: z, rows: rows, into: nll)
                for b in 0..<rows { accumulators[b].add(-nll[b] + logPriorOverPosterior[b]) }
            }
            for b in 0..<rows { bounds[first + b] = accumulators[b].value }
            first += rows
        }
        return bounds
    }
}
