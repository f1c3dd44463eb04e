import Foundation

/// Whether a schedule counts training steps or epochs, as the user wrote it.
public enum ScheduleUnit: String, Codable, Sendable { case steps, epochs }

/// The shape of a cyclical schedule's rise within a cycle (Fu et al. 2019 and its reference code).
public enum Ramp: String, Codable, Sendable, CaseIterable { case linear, sigmoid, cosine }

/// How the KL term is weighted over training. Fixed schedules are functions of the step; controllers
/// (GECO, PI control) are driven by `BetaController` from the figures of each step.
public enum BetaSchedule: Codable, Sendable, Equatable {
    /// β.
    case constant(Double)
    /// β = β_norm·N/M (Higgins et al. 2017), N features, M latent dimensions.
    case normalized(betaNorm: Double, features: Int, latents: Int)
    /// β(t) = β_max·min(1, t/T) (Bowman et al. 2015).
    case warmup(max: Double, length: Int, unit: ScheduleUnit)
    /// C cycles over the run; within a cycle β rises over a fraction `ratio` of it, then stays at β_max
    /// (Fu et al. 2019, `frange_cycle_linear` and its sigmoid and cosine variants).
    case cyclical(max: Double, cycles: Int, ratio: Double, ramp: Ramp, unit: ScheduleUnit)
    /// loss = recon + γ·|KL − C(t)|, C rising linearly to C_max over T (Burgess et al. 2018).
    case capacity(gamma: Double, maxCapacity: Double, length: Int, unit: ScheduleUnit)
    /// KL term = Σ_j max(λ, batch-mean KL_j), weighted by β (Kingma et al. 2016).
    case freeBits(lambda: Double, beta: Double)
    /// Minimise KL subject to reconstruction ≤ κ: loss = KL + λ·(recon − κ), λ ← λ·exp(α·C_ma)
    /// (Rezende & Viola 2018); β_eff = 1/λ.
    case geco(kappa: Double, alpha: Double, initialLambda: Double, momentum: Double)
    /// β(t) = K_p/(1 + exp(e(t))) − K_i·Σe + β_min, e = KL_target − KL(t), clipped (Shao et al. 2020).
    case piControl(target: Double, kp: Double, ki: Double, minBeta: Double, maxBeta: Double)

    /// β at a step of a run with `totalSteps` steps and `stepsPerEpoch` steps per epoch. Controllers
    /// return their starting value here; `BetaController` drives them.
    public func beta(atStep step: Int, stepsPerEpoch: Int, totalSteps: Int) -> Double {
        func position(_ unit: ScheduleUnit) -> Double {
            unit == .steps ? Double(step) : Double(step / max(1, stepsPerEpoch))
        }
        switch self {
        case .constant(let beta):
            return beta
        case .normalized(let betaNorm, let n, let m):
            return betaNorm * Double(n) / Double(m)
        case .warmup(let maximum, let length, let unit):
            return maximum * min(1, position(unit) / Double(max(1, length)))
        case .cyclical(let maximum, let cycles, let ratio, let ramp, let unit):
            let total = unit == .steps ? Double(totalSteps) : Double(totalSteps / max(1, stepsPerEpoch))
            let period = total / Double(max(1, cycles))
            guard period > 0 else { return maximum }
            let t = position(unit)
            let tau = (t - (t / period).rounded(.down) * period) / period
            let x = min(1, tau / ratio)
            if x >= 1 { return maximum }
            switch ramp {
            case .linear: return maximum * x
            case .sigmoid: return maximum / (1 + Foundation.exp(-(12 * x - 6)))
            case .cosine: return maximum * (0.5 - 0.5 * Foundation.cos(Double.pi * x))
            }
        case .capacity:
            return 1
        case .freeBits(_, let beta):
            return beta
        case .geco(_, _, let lambda, _):
            return 1 / lambda
        case .piControl(_, _, _, let minBeta, _):
            return minBeta
        }
    }

    /// The capacity C(t) of a capacity schedule (0 for the others).
    public func capacity(atStep step: Int, stepsPerEpoch: Int) -> Double {
        guard case .capacity(_, let cMax, let length, let unit) = self else { return 0 }
        let t = unit == .steps ? Double(step) : Double(step / max(1, stepsPerEpoch))
        return cMax * min(1, t / Double(max(1, length)))
    }

    /// True for schedules whose β is a function of the step alone (`vaec schedule` can print them).
    public var isFixed: Bool {
        switch self {
        case .geco, .piControl: return false
        default: return true
        }
    }

    public var summary: String {
        func f(_ v: Double) -> String { WeightingReport.trim(v) }
        switch self {
        case .constant(let b): return "β = \(f(b))"
        case .normalized(let bn, let n, let m): return "β = β_norm·N/M = \(f(bn))·\(n)/\(m) = \(f(bn * Double(n) / Double(m)))"
        case .warmup(let b, let t, let u): return "linear warm-up to β = \(f(b)) over \(t) \(u.rawValue)"
        case .cyclical(let b, let c, let r, let ramp, let u):
            return "cyclical: \(c) cycles over the run (\(u.rawValue)), \(ramp.rawValue) ramp over \(f(r * 100))% of each, to β = \(f(b))"
        case .capacity(let g, let c, let t, let u): return "capacity: γ = \(f(g)), C rising to \(f(c)) nats over \(t) \(u.rawValue)"
        case .freeBits(let l, let b): return "free bits: λ = \(f(l)) nats per latent dimension, β = \(f(b))"
        case .geco(let k, let a, let l, _): return "GECO: reconstruction ≤ κ = \(f(k)) nats, α = \(f(a)), λ from \(f(l)) (β_eff = 1/λ)"
        case .piControl(let t, let kp, let ki, let lo, let hi):
            return "PI control to KL = \(f(t)) nats (K_p = \(f(kp)), K_i = \(f(ki)), β in [\(f(lo)), \(f(hi))])"
        }
    }
}
