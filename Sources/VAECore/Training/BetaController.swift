/// Decides β (and any other weighting hyper-parameter) before each training step, and sees the step's
/// figures afterwards: fixed schedules ignore them, controllers (GECO, PI control) update from them.
/// Its state is plain numbers so a checkpoint can save and restore it.
public struct BetaController: Sendable {
    public let schedule: BetaSchedule
    /// Controller state (e.g. GECO's λ and moving average); empty for fixed schedules.
    public var state: [Double] = []

    public init(schedule: BetaSchedule) { self.schedule = schedule }

    /// The hyper-parameters of the next step, by the names the graph's `hyper` leaves use.
    public func hypers(step: Int, epoch: Int, stepsPerEpoch: Int, totalSteps: Int) -> [String: Double] {
        ["beta": schedule.beta(atStep: step, epoch: epoch)]
    }

    /// Called after each step with the batch's mean reconstruction and KL (nats per example).
    public mutating func observe(reconstruction: Double, kl: Double) {}
}
