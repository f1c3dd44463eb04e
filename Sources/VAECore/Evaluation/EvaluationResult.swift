import Foundation

/// What `vaec eval` measures on a data set, per example, in nats.
///
/// Sign convention: `elbo` and `iwBound` are log-likelihood bounds (negative numbers for discrete-ish
/// data, higher is better) with ELBO ≤ L_K ≤ log p(x); `reconstruction` (distortion, E_q[−log p(x|z)])
/// and `kl` (rate) are the two positive terms of −ELBO = reconstruction + KL.
public struct EvaluationResult: Sendable {
    public var examples: Int
    /// Input features per example (for bits per dimension).
    public var features: Int
    public var reconstruction: Double
    public var kl: Double
    public var klPerDimension: [Double]
    /// Cov_x E_q[z_j] per latent dimension, and how many exceed `ActiveUnits.threshold`.
    public var posteriorMeanVariance: [Double]
    public var activeUnits: Int
    /// L_K with `iwSamples` samples, or nil when not computed (K = 0).
    public var iwBound: Double?
    public var iwSamples: Int
    /// The posterior means of every example (examples × latent features), for pictures.
    public var posteriorMeans: [Float]
    public var posteriorLogVariances: [Float]

    public var elbo: Double { -(reconstruction + kl) }
    public var negativeELBO: Double { reconstruction + kl }
    /// −ELBO in bits per input dimension.
    public var bitsPerDimension: Double { negativeELBO / (Double(features) * Foundation.log(2)) }

    /// One JSON object with exactly the keys `vaec eval --json` documents.
    public var json: String {
        func number(_ v: Double) -> String { v.isFinite ? "\(v)" : "null" }
        let perDimension = klPerDimension.map(number).joined(separator: ", ")
        return """
        {"elbo": \(number(elbo)), "reconstruction": \(number(reconstruction)), "kl": \(number(kl)), \
        "kl_per_dim": [\(perDimension)], "active_units": \(activeUnits), \
        "iw_bound": \(iwBound.map(number) ?? "null"), "iw_samples": \(iwSamples), "examples": \(examples)}
        """
    }

    /// The figures as lines for a terminal.
    public var summary: String {
        var lines = [
            String(format: "-ELBO            %.3f nats per example (%.4f bits per dimension)", negativeELBO, bitsPerDimension),
            String(format: "reconstruction   %.3f (distortion)", reconstruction),
            String(format: "KL               %.3f (rate)", kl),
            "active units     \(activeUnits) of \(klPerDimension.count) (Cov_x E_q[z_j] > \(ActiveUnits.threshold))",
        ]
        if let iwBound {
            lines.append(String(format: "-log p(x) <=     %.3f (importance-weighted bound, K = %d; ELBO gap %.3f)",
                                -iwBound, iwSamples, iwBound - elbo))
        }
        lines.append("KL per dimension " + klPerDimension.map { String(format: "%.2f", $0) }.joined(separator: " "))
        return lines.joined(separator: "\n")
    }
}
