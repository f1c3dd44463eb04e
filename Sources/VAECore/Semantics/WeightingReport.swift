import Foundation

/// The effective weighting a model's reductions and β add up to, relative to the ELBO, and the
/// warnings for combinations known to go wrong (domain.md's table).
public enum WeightingReport {
    /// β_eff = β·b/a for a constant β (a = 1 or 1/N for the reconstruction, b = 1 or 1/M for the KL).
    public static func effectiveBeta(_ model: ModelSpec) -> Double? {
        let factor = model.objective.effectiveBetaFactor(features: model.input.featureCount, latents: model.latent.featureCount)
        switch model.objective.beta {
        case .constant(let beta): return beta * factor
        case .normalized(let betaNorm, let n, let m): return betaNorm * Double(n) / Double(m) * factor
        default: return nil
        }
    }

    /// One line describing the loss, e.g. "reconstruction summed over 784 features, KL summed over 20
    /// latent dimensions, β = 1: effective β = 1 (the ELBO)".
    public static func summary(_ model: ModelSpec) -> String {
        let o = model.objective
        let n = model.input.featureCount, m = model.latent.featureCount
        var text = "reconstruction \(o.reconstruction == .sum ? "summed" : "averaged") over \(n) features, "
        text += "KL (\(o.kl.rawValue)) \(o.klReduction == .sum ? "summed" : "averaged") over \(m) latent dimensions, "
        text += o.beta.summary
        if case .normal(let mean, let std) = model.latent.prior, mean != 0 || std != 1 {
            text += " with the prior N(\(trim(mean)), \(trim(std))²)"
        }
        if case .mixture(let k) = model.latent.prior { text += " with a learned mixture-of-\(k)-Gaussians prior" }
        if let eff = effectiveBeta(model) {
            text += ": effective β = \(trim(eff))"
            if abs(eff - 1) < 1e-12 { text += " (the ELBO)" }
        } else {
            let factor = o.effectiveBetaFactor(features: n, latents: m)
            if factor != 1 { text += "; the reductions multiply β by \(trim(factor)) relative to the ELBO" }
        }
        if let sigma = model.likelihood.fixedSigma {
            text += "; a Gaussian with fixed σ = \(trim(sigma)) is 'MSE + β·KL' with β = 2σ² = \(trim(2 * sigma * sigma))"
        }
        return text
    }

    public static func warnings(for model: ModelSpec) -> [String] {
        var out: [String] = []
        let factor = model.objective.effectiveBetaFactor(features: model.input.featureCount, latents: model.latent.featureCount)
        if let eff = effectiveBeta(model), eff >= 20 {
            var fix = "'reconstruction: sum' (the ELBO)"
            if model.objective.reconstruction == .mean {
                fix += ", or keep the mean and set 'beta: \(trim(1 / factor))'"
            }
            out.append("""
            effective β is \(trim(eff)): \(model.objective.reconstruction == .mean ? "the reconstruction is averaged over \(model.input.featureCount) features but the KL is not scaled to match, so " : "")the KL term weighs \(trim(eff))× what the ELBO gives it. \
            Expect reconstructions that all look alike (a collapsed posterior: the decoder ignores z). Fix: \(fix).
            """)
        }
        if let eff = effectiveBeta(model), eff > 0, eff <= 0.05 {
            out.append("effective β is \(trim(eff)): the KL term is nearly ignored, so the latent space will be unstructured and samples from the prior poor.")
        }
        return out
    }

    static func trim(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e9 { return String(Int(v)) }
        return String(format: "%.4g", v)
    }
}

extension WeightingReport {
    /// A value for tables: up to six significant digits, no trailing zeros.
    public static func format(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e9 { return String(Int(v)) }
        var s = String(format: "%.6g", v)
        if s.contains(".") && !s.contains("e") { while s.hasSuffix("0") { s.removeLast() } }
        return s
    }
}
