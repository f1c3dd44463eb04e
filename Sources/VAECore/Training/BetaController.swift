import Foundation

/// Decides β (and any other weighting hyper-parameter) before each training step, and sees the step's
/// figures afterwards: fixed schedules ignore them, controllers (GECO, PI control) update from them.
/// Its state is plain numbers so a checkpoint can save and restore it exactly.
public struct BetaController: Sendable {
    public let schedule: BetaSchedule
    /// Controller state: GECO [λ, moving average of the constraint, steps seen]; PI [integral, β].
    public var state: [Double]

    public init(schedule: BetaSchedule) {
        self.schedule = schedule
        switch schedule {
        case .geco(_, _, let lambda, _): state = [lambda, 0, 0]
        case .piControl(_, _, _, let minBeta, _): state = [0, minBeta]
        default: state = []
        }
    }

    /// GECO's λ (nil for other schedules).
    public var lambda: Double? {
        if case .geco = schedule { return state[0] }
        return nil
    }

    /// The hyper-parameters of the next step, by the names the graph's `hyper` leaves use:
    /// `beta`, `recon_weight` (GECO's λ), `capacity` (C(t)).
    public func hypers(step: Int, epoch: Int, stepsPerEpoch: Int, totalSteps: Int) -> [String: Double] {
        switch schedule {
        case .geco:
            return ["beta": 1, "recon_weight": state[0]]
        case .piControl:
            return ["beta": state[1]]
        case .capacity:
            return ["beta": 1, "capacity": schedule.capacity(atStep: step, stepsPerEpoch: stepsPerEpoch)]
        default:
            return ["beta": schedule.beta(atStep: step, stepsPerEpoch: stepsPerEpoch, totalSteps: totalSteps)]
        }
    }

    /// β relative to the ELBO in force for the hypers of a step (GECO: 1/λ).
    public static func effectiveBeta(_ hypers: [String: Double]) -> Double {
        (hypers["beta"] ?? 1) / (hypers["recon_weight"] ?? 1)
    }

    /// Called after each step with the batch's mean reconstruction and KL (nats per example).
    public mutating func observe(reconstruction: Double, kl: Double) {
        switch schedule {
        case .geco(let kappa, let alpha, _, let momentum):
            // C_ma ← momentum·C_ma + (1 − momentum)·(recon − κ), starting from the first value;
            // λ ← λ·exp(α·C_ma), kept within [1e-6, 1e6] so one bad batch cannot zero or explode it.
            let constraint = reconstruction - kappa
            let average = state[2] == 0 ? constraint : momentum * state[1] + (1 - momentum) * constraint
            state[1] = average
            state[2] += 1
            state[0] = min(1e6, max(1e-6, state[0] * Foundation.exp(alpha * average)))
        case .piControl(let target, let kp, let ki, let minBeta, let maxBeta):
            // ControlVAE: P = K_p/(1 + exp(e)), I accumulates −K_i·e; the integral only moves while β is
            // inside its bounds (anti-windup).
            let error = target - kl
            let proportional = kp / (1 + Foundation.exp(min(50, error)))
            let integral = state[0] - ki * error
            let beta = proportional + integral + minBeta
            if beta >= minBeta && beta <= maxBeta { state[0] = integral }
            state[1] = min(maxBeta, max(minBeta, beta))
        default:
            break
        }
    }
}
