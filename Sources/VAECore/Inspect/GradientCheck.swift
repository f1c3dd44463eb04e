import Foundation

/// Checks a compiled gradient against central finite differences of the loss, in random directions,
/// as JAX's `check_grads` does: for a random unit direction v,
///
///     ⟨∇L(θ), v⟩  ≈  (L(θ + h·v) − L(θ − h·v)) / 2h
///
/// first over all parameters at once, then over each parameter tensor alone (v zero elsewhere), so a
/// mismatch names the parameter whose gradient is wrong. The noise ε is the same on both sides, so the
/// loss is a deterministic function of θ; it is evaluated as `SmoothLoss` (kinks frozen at θ, reductions
/// in Double).
///
/// Each difference is taken at h and at 2h. Their disagreement estimates the difference's own error
/// (truncation, O(h²), plus rounding, O(1/h)), and is added to the tolerance: a direction whose finite
/// difference cannot resolve the derivative passes as "unresolved" rather than failing at random.
///
/// It takes the graph rather than compiling one, so a test can hand it a graph with a deliberately
/// wrong gradient and watch it fail.
public enum GradientCheck {
    public struct Options: Sendable {
        /// Random directions over all parameters (one more per parameter tensor is always taken).
        public var directions = 3
        /// h = relativeStep · max(‖θ_S‖, 1), where θ_S are the entries the direction moves. A unit
        /// direction over n entries moves each by about h/√n, so each entry moves by about
        /// `relativeStep` times its tensor's root-mean-square. Measured on the MNIST model at
        /// initialisation (kinks frozen): 10⁻¹ gave relative errors ≤ 10⁻³ with the h–2h disagreement
        /// showing the O(h²) term; 10⁻² errors ≤ 10⁻³; 10⁻³ errors up to 7·10⁻³ from Float32 rounding.
        /// 3·10⁻² sits between the two error sources.
        public var relativeStep = 3e-2
        /// Allowed |finite difference − ⟨∇L, v⟩| relative to the larger of the two, on top of the
        /// finite difference's own estimated error. On the 18 samples (batch 128, at initialisation)
        /// correct gradients agree to 10⁻⁴–10⁻³, at worst 6.5·10⁻³ on a direction whose derivative is
        /// 6·10⁻⁴ (where the error estimate covers it); a wrong rule is off by a factor, not a percent.
        public var tolerance = 1e-2
        /// Seed of the random directions.
        public var seed: UInt64 = 0x5EED

        public init() {}
    }

    /// One direction's comparison.
    public struct Probe: Sendable {
        /// The tensor the direction moves, or nil for a direction over all parameters.
        public var parameter: String?
        /// ⟨∇L, v⟩ from the compiled gradient.
        public var analytic: Double
        /// The central difference with step h.
        public var numeric: Double
        /// Its estimated error: |difference at h − difference at 2h| (plus rounding of L).
        public var numericError: Double
        public var step: Double
        public var tolerance: Double

        public var difference: Double { Swift.abs(numeric - analytic) }
        public var scale: Double { Swift.max(Swift.abs(numeric), Swift.abs(analytic)) }
        public var relativeError: Double { scale > 0 ? difference / scale : 0 }
        /// The largest |numeric − analytic| accepted.
        public var allowed: Double { tolerance * scale + 2 * numericError }
        /// How far past its allowance the difference is (≤ 1 passes).
        public var severity: Double { allowed > 0 ? difference / allowed : (difference > 0 ? .infinity : 0) }
        public var passed: Bool { difference <= allowed }
        /// Whether the finite difference was precise enough to judge the gradient by.
        public var resolved: Bool { numericError <= 0.25 * scale }
        public var label: String { parameter ?? "all parameters" }
    }

    public struct Report: Sendable {
        public var probes: [Probe]
        /// The loss at θ.
        public var loss: Double
        public var passed: Bool { probes.allSatisfy(\.passed) }
        /// The per-tensor probe that disagrees most (relative to its allowance), else the worst of all.
        public var worst: Probe? {
            probes.filter { $0.parameter != nil }.max { $0.severity < $1.severity }
                ?? probes.max { $0.severity < $1.severity }
        }

        public var table: String {
            let width = Swift.max(16, probes.map(\.label.count).max() ?? 0) + 2
            var lines = [pad("direction", width) + pad("⟨∇L, v⟩", 14) + pad("finite diff.", 14) + pad("± est.", 10)
                         + pad("rel. error", 11) + "h"]
            for p in probes {
                var row = pad(p.label, width) + pad(fmt(p.analytic), 14) + pad(fmt(p.numeric), 14)
                row += pad(String(format: "%.1e", p.numericError), 10) + pad(String(format: "%.2e", p.relativeError), 11)
                row += String(format: "%.3g", p.step)
                if !p.passed { row += "   MISMATCH" } else if !p.resolved { row += "   (unresolved)" }
                lines.append(row)
            }
            return lines.joined(separator: "\n")
        }

        public var verdict: String {
            let perTensor = probes.filter { $0.parameter != nil }.count
            if passed {
                let unresolved = probes.filter { !$0.resolved }.count
                let largest = probes.filter(\.resolved).map(\.relativeError).max() ?? 0
                var text = "gradient check passed: \(probes.count - perTensor) random directions over all parameters and one within each of \(perTensor) parameter tensors agree with central finite differences (largest relative error \(String(format: "%.1e", largest)))"
                if unresolved > 0 { text += "; \(unresolved) too small to resolve against the loss's rounding" }
                return text
            }
            guard let w = worst else { return "gradient check failed" }
            return "gradient check failed: the gradient of '\(w.label)' disagrees with finite differences: ⟨∇L, v⟩ = \(fmt(w.analytic)) but (L(θ+hv) − L(θ−hv))/2h = \(fmt(w.numeric)) ± \(String(format: "%.1e", w.numericError)) (relative error \(String(format: "%.2e", w.relativeError)))"
        }

        private func pad(_ s: String, _ n: Int) -> String { s.padding(toLength: Swift.max(n, s.count + 1), withPad: " ", startingAt: 0) }
        private func fmt(_ v: Double) -> String { String(format: "%.6g", v) }
    }

    /// Checks `graph`'s `grad:` outputs against its `loss` output at `point`. The point's parameters are
    /// moved during the check and restored before it returns.
    public static func run(graph: Graph, point: EvaluationPoint, options: Options = Options()) throws -> Report {
        let model = point.model
        let store = point.parameters
        let gradientNames = GraphEvaluator.gradientOutputs(of: model)
        let full = try GraphEvaluator(graph: graph, point: point, outputs: [OutputName.loss] + gradientNames)
        full.run()
        let gradients = gradientNames.map { full.values($0).map(Double.init) }
        for (spec, g) in zip(model.parameters, gradients) where !g.allSatisfy(\.isFinite) {
            throw VAECError.data("the gradient of '\(spec.name)' is not finite at this point; 'vaec grad --values' shows where it starts")
        }
        let smooth = try SmoothLoss(graph: graph, point: point)
        smooth.freeze()
        let loss = smooth.value()
        guard loss.isFinite else { throw VAECError.data("the loss is \(loss) at this point; 'vaec grad --values' shows where it starts") }

        var random = RandomSource(seed: options.seed)
        let everything = Array(model.parameters.indices)
        let sets: [(members: [Int], parameter: String?)] = Array(repeating: (everything, nil), count: options.directions)
            + everything.map { ([$0], model.parameters[$0].name) }
        var probes: [Probe] = []
        for (members, parameter) in sets {
            let saved = members.map { store.values($0) }
            // A random unit direction over the members' entries.
            var direction = saved.map { [Float](repeating: 0, count: $0.count) }
            var squared = 0.0, thetaSquared = 0.0
            for k in direction.indices {
                direction[k].withUnsafeMutableBufferPointer { random.fillNormal($0.baseAddress!, count: $0.count) }
                for i in direction[k].indices {
                    squared += Double(direction[k][i]) * Double(direction[k][i])
                    thetaSquared += Double(saved[k][i]) * Double(saved[k][i])
                }
            }
            let norm = squared.squareRoot()
            let h = options.relativeStep * Swift.max(thetaSquared.squareRoot(), 1)

            /// The central difference with step `step`, and ⟨∇L, v⟩ over the displacement actually
            /// taken: θ ± step·v is rounded to Float32, so the analytic side uses the rounded points.
            func centralDifference(_ step: Double) -> (numeric: Double, analytic: Double) {
                var analytic = 0.0
                func move(_ sign: Double) {
                    for (k, p) in members.enumerated() {
                        let target = store.pointers[p]
                        for i in saved[k].indices {
                            let theta = Double(saved[k][i]), offset = step * Double(direction[k][i]) / norm
                            target[i] = Float(theta + sign * offset)
                            if sign > 0 {
                                analytic += gradients[p][i] * (Double(Float(theta + offset)) - Double(Float(theta - offset)))
                            }
                        }
                    }
                }
                move(1)
                let lossPlus = smooth.value()
                move(-1)
                let lossMinus = smooth.value()
                for (k, p) in members.enumerated() { store.set(p, saved[k]) }
                return ((lossPlus - lossMinus) / (2 * step), analytic / (2 * step))
            }
            let fine = centralDifference(h), coarse = centralDifference(2 * h)
            // The difference's error: the h–2h disagreement, and at least the rounding left in L. With
            // the reductions in Double that is about 1/100 of a Float32 ulp of L (measured on the MNIST
            // model: losses a tiny step apart scatter by 1e-7 to 8e-7 around L ≈ 548, whose ulp is 6e-5);
            // the floor takes 1/16 ulp, so a gradient that is truly ~0 is not failed on rounding.
            let rounding = Double(Float(loss).ulp) / 16 / (2 * h)
            let error = Swift.max(Swift.abs(coarse.numeric - fine.numeric), rounding)
            probes.append(Probe(parameter: parameter, analytic: fine.analytic, numeric: fine.numeric,
                                numericError: error, step: h, tolerance: options.tolerance))
        }
        return Report(probes: probes, loss: loss)
    }
}
