import Foundation

extension Likelihood {
    /// The mean of p(x|z) from the graph's `decoder_output` value: the graph gives logits for the
    /// Bernoulli kinds and the mean itself for the others (`LossBuilder.displayValue`).
    public func mean(ofDecoderOutput value: Float) -> Float {
        switch self {
        case .bernoulli:
            return Float(1 / (1 + Foundation.exp(-Double(value))))
        case .continuousBernoulli:
            return Float(Self.continuousBernoulliMean(logit: Double(value)))
        case .normal, .laplace, .beta:
            return value
        }
    }

    /// E[x] under the continuous Bernoulli with λ = σ(l): λ/(2λ−1) + 1/(2·artanh(1−2λ)). With
    /// 2λ−1 = tanh(l/2) and artanh(1−2λ) = −l/2 this is ½ + ½(coth(l/2) − 2/l), which cancels
    /// catastrophically near l = 0; there the series ½ + l/12 − l³/720 + l⁵/30240 is used (its next term,
    /// l⁷/1209600, is below 1e-17 for |l| < 0.02).
    public static func continuousBernoulliMean(logit l: Double) -> Double {
        if abs(l) < 0.02 {
            let l2 = l * l
            return 0.5 + l * (1.0 / 12 + l2 * (-1.0 / 720 + l2 / 30240))
        }
        return 0.5 + 0.5 * (1 / Foundation.tanh(l / 2) - 2 / l)
    }
}
