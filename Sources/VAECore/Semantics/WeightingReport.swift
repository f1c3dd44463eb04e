/// The effective weighting a model's reductions and β add up to, relative to the ELBO, and the
/// warnings for combinations known to go wrong (domain.md's table).
public enum WeightingReport {
    public static func effectiveBeta(_ model: ModelSpec) -> Double? {
        guard case .constant(let beta) = model.objective.beta else { return nil }
        return beta * model.objective.effectiveBetaFactor(features: model.input.featureCount,
                                                         latents: model.latent.featureCount)
    }

    /// One line describing the loss, e.g. "reconstruction summed over 784 features, KL summed over 20
    /// latent dimensions, β = 1: effective β = 1 (the ELBO)".
    public static func summary(_ model: ModelSpec) -> String {
        let o = model.objective
        let n = model.input.featureCount, m = model.latent.featureCount
        var text = "reconstruction \(o.reconstruction == .sum ? "summed" : "averaged") over \(n) features, "
        text += "KL \(o.klReduction == .sum ? "summed" : "averaged") over \(m) latent dimensions"
        if case .constant(let beta) = o.beta { text += ", β = \(trim(beta))" }
        if let eff = effectiveBeta(model) {
            text += ": effective β = \(trim(eff))"
            if eff == 1 { text += " (the ELBO)" }
        }
        if case .normal(let sigma) = model.likelihood {
            text += "; a Gaussian with fixed σ = \(trim(sigma)) is MSE with β = 2σ² = \(trim(2 * sigma * sigma))"
        }
        return text
    }

    public static func warnings(for model: ModelSpec) -> [String] {
        var out: [String] = []
        if let eff = effectiveBeta(model), eff >= 20 {
            out.append("""
            effective β is \(trim(eff)): the reconstruction is averaged over \(model.input.featureCount) features but the KL is \
            not scaled to match, so the KL term weighs \(trim(eff))× what the ELBO gives it. Expect reconstructions that all \
            look alike (a collapsed posterior). Fix: 'reconstruction: sum' (the ELBO), or keep the mean and set \
            'beta: \(trim(1 / model.objective.effectiveBetaFactor(features: model.input.featureCount, latents: model.latent.featureCount)))'.
            """)
        }
        return out
    }

    static func trim(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e9 { return String(Int(v)) }
        return String(format: "%.4g", v)
    }
}
import Foundation
