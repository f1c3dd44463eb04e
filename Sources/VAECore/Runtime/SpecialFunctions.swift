import Foundation

/// Special functions in Double, used by the evaluators (results rounded to Float there).
public enum SpecialFunctions {
    public static func logGamma(_ x: Double) -> Double { Foundation.lgamma(x) }

    /// ψ(x) for x > 0: the recurrence ψ(x) = ψ(x+1) − 1/x up to x ≥ 6, then the asymptotic series.
    public static func digamma(_ x: Double) -> Double {
        guard x.isFinite else { return x == .infinity ? .infinity : .nan }
        if x <= 0 && x == x.rounded() { return .nan }
        if x < 0 { return digamma(1 - x) - Double.pi / Foundation.tan(Double.pi * x) }   // reflection
        var value = 0.0, v = x
        while v < 10 { value -= 1 / v; v += 1 }   // from 10 on the series is accurate to ~1e-15
        let r = 1 / (v * v)
        value += Foundation.log(v) - 0.5 / v
            - r * (1.0 / 12 - r * (1.0 / 120 - r * (1.0 / 252 - r * (1.0 / 240 - r * (1.0 / 132)))))
        return value
    }

    /// ψ₁(x) for x > 0: ψ₁(x) = ψ₁(x+1) + 1/x² up to x ≥ 6, then the asymptotic series.
    public static func trigamma(_ x: Double) -> Double {
        guard x.isFinite, x > 0 else { return x == .infinity ? 0 : .nan }
        var value = 0.0, v = x
        while v < 12 { value += 1 / (v * v); v += 1 }   // from 12 on the series is accurate to ~1e-14
        let r = 1 / (v * v)
        value += 1 / v + r / 2 + (1 / (v * v * v)) * (1.0 / 6 - r * (1.0 / 30 - r * (1.0 / 42 - r * (1.0 / 30 - r * 5.0 / 66))))
        return value
    }

    /// log C(l) = log(l / tanh(l/2)); near 0 the series log 2 + l²/12 − 7l⁴/1440. (domain.md gives the
    /// quartic term as l⁴/1440; integrating the slope's series 1/l − 1/sinh l = l/6 − 7l³/360 gives 7l⁴/1440,
    /// and l = 0.5 confirms it: log(0.5/tanh 0.25) = 0.713677, the series with 7/1440 0.713677, with 1/1440 0.713937.)
    public static func cbLogNormalizer(_ l: Double) -> Double {
        let a = Swift.abs(l)
        if a < 1e-2 { let l2 = l * l; return Foundation.log(2) + l2 / 12 - 7 * l2 * l2 / 1440 }
        if a > 40 { return Foundation.log(a) }          // tanh(l/2) is ±1 to double precision
        return Foundation.log(a / Swift.abs(Foundation.tanh(l / 2)))
    }

    /// d/dl log C(l) = 1/l − 1/sinh(l); near 0 the series l/6 − 7l³/360.
    public static func cbLogNormalizerSlope(_ l: Double) -> Double {
        if Swift.abs(l) < 1e-2 { return l / 6 - 7 * l * l * l / 360 }
        if Swift.abs(l) > 700 { return 1 / l }
        return 1 / l - 1 / Foundation.sinh(l)
    }
}
