import Foundation

/// How a target spells the array functions the loss uses.
struct ArrayDialect {
    /// The array namespace: `torch` or `jnp`.
    var xp: String
    var softplus: String
    var logGamma: String
    /// clip(x, lo, hi) without a gradient to x (the data).
    var clip: (String, String, String) -> String
    /// max(c, t) elementwise for a number c.
    var maximum: (String, String) -> String
}

/// The objective exactly as `LossBuilder` assembles it, written as Python: the same terms, the same
/// grouping of every sum and product, the same float32 constants. Only the branches the model uses
/// are written, so the code reads as the model's own loss.
struct PythonLoss {
    let plan: ExportPlan
    let d: ArrayDialect
    var model: ModelSpec { plan.model }
    var features: Int { model.input.featureCount }
    var latents: Int { model.latent.featureCount }

    /// `def negative_log_likelihood(x, p, inv_batch)`: −log p(x|z) per example and feature.
    func writeLikelihood(_ w: PythonWriter) {
        w.line("def negative_log_likelihood(x, p, inv_batch):")
        w.indented {
            let xp = d.xp
            switch model.likelihood {
            case .bernoulli:
                w.docstring("−log p(x | z) per example and feature, Bernoulli on logits: softplus(l) − x·l.")
                w.line("l = p[\"logits\"]")
                w.line("return \(d.softplus)(l) - x * l")
            case .continuousBernoulli:
                w.docstring("""
                −log p(x | z) per example and feature, continuous Bernoulli on logits (Loaiza-Ganem &
                Cunningham 2019): the Bernoulli's softplus(l) − x·l minus the log-normaliser log C(l).
                """)
                w.line("l = p[\"logits\"]")
                w.line("return (\(d.softplus)(l) - x * l) - cb_log_normalizer(l)")
            case .normal(let source):
                w.docstring("−log p(x | z) per example and feature, Gaussian: ½((x−m)/σ)² + log σ + ½ log 2π, σ \(source.summary).")
                w.line("squared = \(xp).square(x - p[\"mean\"])")
                writeLogScale(w, source, label: "sigma")
                if case .fixed(let sigma) = source {
                    // vaec folds exp(−2·log σ) into one constant (SimplifyPass), in Float.
                    let folded = Float(-2) * Float(Foundation.log(sigma))
                    w.line("inverse_variance = \(Python.float32(Float(Foundation.exp(Double(folded)))))", comment: "1/σ², folded as vaec folds it")
                } else {
                    w.line("inverse_variance = \(xp).exp(-2.0 * log_sigma)")
                }
                w.line("quadratic = 0.5 * (squared * inverse_variance)")
                w.line("return (quadratic + log_sigma) + \(Python.float32(Float(0.5 * Foundation.log(2 * Double.pi))))", comment: "½ log 2π in float32")
            case .laplace(let source):
                w.docstring("−log p(x | z) per example and feature, Laplace: |x − m|/s + log 2s, s \(source.summary).")
                w.line("distance = \(xp).abs(x - p[\"mean\"])")
                writeLogScale(w, source, label: "scale")
                if case .fixed = source {
                    w.line("inverse_scale = \(Python.float32(Float(Foundation.exp(Double(-Float(Foundation.log(scaleValue(source))))))))",
                           comment: "1/s, folded as vaec folds it")
                    w.line("return distance * inverse_scale + (log_scale + \(Python.float32(Float(Foundation.log(2.0)))))")
                } else {
                    w.line("return distance * \(xp).exp(-log_scale) + (log_scale + \(Python.float32(Float(Foundation.log(2.0)))))")
                }
            case .beta:
                let epsilon: Float = 1e-6
                w.docstring("""
                −log p(x | z) per example and feature, Beta(α, β) with x clamped to [ε, 1 − ε], ε = 1e-6 (in float32,
                as vaec computes 1 − ε): log Γ(α) + log Γ(β) − log Γ(α+β) − ((α−1) log x + (β−1) log(1−x)).
                """)
                w.line("alpha, beta = p[\"alpha\"], p[\"beta\"]")
                w.line("clamped = \(d.clip("x", Python.float32(epsilon), Python.float32(1 - epsilon)))")
                w.line("normaliser = (\(d.logGamma)(alpha) + \(d.logGamma)(beta)) - \(d.logGamma)(alpha + beta)")
                w.line("kernel = (alpha - 1.0) * \(xp).log(clamped) + (beta - 1.0) * \(xp).log(1.0 - clamped)")
                w.line("return normaliser - kernel")
            }
        }
    }

    private func scaleValue(_ source: ScaleSource) -> Double {
        if case .fixed(let v) = source { return v }
        return 1
    }

    /// `log_sigma = …` (or `log_scale`) for a scale source.
    private func writeLogScale(_ w: PythonWriter, _ source: ScaleSource, label: String) {
        let name = "log_\(label)"
        switch source {
        case .fixed(let v):
            w.line("\(name) = \(Python.float32(Float(Foundation.log(v))))", comment: "log \(Python.number(v)) in float32")
        case .learned, .learnedPerFeature, .predicted:
            w.line("\(name) = p[\"\(name)\"]", comment: source == .predicted ? "log of the decoder's \(label)" : "a learned parameter (\(source.summary))")
        case .optimal:
            // σ-VAE: σ*² is the batch's mean squared error; log σ* softly clipped from below at −6.
            w.line("mean_square = inv_batch * (\(Python.float32(1 / Float(features))) * sum_batch(sum_features(squared)))",
                   comment: "σ*², over the batch and the \(features) features")
            w.line("\(name) = \(d.softplus)(0.5 * \(d.xp).log(mean_square) + 6.0) - 6.0", comment: "−6 + softplus(log σ* + 6)")
        }
    }

    /// The arguments `kl_divergence` takes: a learned prior also needs the parameters.
    var klArguments: String {
        if case .mixture = model.latent.prior { return "mean, logvar, eps, z, params" }
        return "mean, logvar, eps, z"
    }

    /// `def kl_divergence(mean, logvar, eps, z)`: KL(q(z|x) ‖ p(z)) per latent dimension.
    func writeKL(_ w: PythonWriter) {
        if case .mixture(let components) = model.latent.prior { return writeMixtureKL(w, components: components) }
        guard case .normal(let m, let s) = model.latent.prior else { return }
        let xp = d.xp
        w.line("def kl_divergence(mean, logvar, eps, z):")
        w.indented {
            switch model.objective.kl {
            case .analytic:
                w.docstring("KL(N(μ, σ²) ‖ N(\(Python.number(m)), \(Python.number(s))²)) per latent dimension, in closed form: ½((σ² + (μ−m)²)/s² − 1 − log σ² + log s²).")
                w.line("variance = \(xp).exp(logvar)")
                let centred = m == 0 ? "mean" : "mean - \(Python.float32(Float(m)))"
                var spread = "variance + \(xp).square(\(centred))"
                if s != 1 { spread = "\(Python.float32(Float(1 / (s * s)))) * (\(spread))" }
                w.line("spread = \(spread)")
                let constant = Float(-1 + 2 * Foundation.log(s))
                // x + (−c) and x − c are the same IEEE operation; the subtraction reads better.
                let shifted = constant < 0 ? "spread - \(Python.float32(-constant))" : "spread + \(Python.float32(constant))"
                w.line("return 0.5 * ((\(shifted)) - logvar)")
            case .sampled:
                w.docstring("""
                log q(z|x) − log p(z) per latent dimension at the sampled z (one-sample Monte Carlo); with
                z = μ + σε, log q = −½ε² − ½ log σ² − ½ log 2π exactly, and the ½ log 2π cancels.
                """)
                w.line("log_q = -(0.5 * (\(xp).square(eps) + logvar))")
                let centred = m == 0 ? "z" : "z - \(Python.float32(Float(m)))"
                let logP = "-(\(Python.float32(Float(0.5 / (s * s)))) * \(xp).square(\(centred)))"
                let logStd = Float(Foundation.log(s))
                w.line("log_p = " + (logStd == 0 ? logP : "\(logP) - \(Python.float32(logStd))"))
                w.line("return log_q - log_p")
            }
        }
    }

    /// A mixture prior's one-sample KL as `LossBuilder.mixtureSampledKL` builds it: log q − log p(z) with
    /// log p(z) = logsumexp_k(log π_k + Σ_j log N(z_j; m_kj, s_kj²)) (the ½ log 2π's cancel), shared evenly
    /// over the latent dimensions; logsumexp with the max taken in vaec's order.
    private func writeMixtureKL(_ w: PythonWriter, components: Int) {
        let xp = d.xp
        w.line("def log_sum_exp(values):")
        w.indented {
            w.docstring("""
            log Σ_k exp(v_k) = m + log Σ_k exp(v_k − m), m the running maximum, summed in order, as vaec builds it.
            The maximum's gradient goes where vaec's goes (to the first operand only where it is strictly larger,
            operands in vaec's order): the parts through m cancel, but only up to rounding, and at ties (equal
            mixture logits) that rounding would otherwise land on other components.
            """)
            w.line("top = \(d.xp).where(values[0] - values[1] > 0, values[0], values[1]) if len(values) > 1 else values[0]")
            w.line("for v in values[2:]:")
            w.indented { w.line("top = \(d.xp).where(v - top > 0, v, top)") }
            w.line("total = \(xp).exp(values[0] - top)")
            w.line("for v in values[1:]:")
            w.indented { w.line("total = total + \(xp).exp(v - top)") }
            w.line("return top + \(xp).log(total)")
        }
        w.blank(2)
        w.line("def kl_divergence(mean, logvar, eps, z, params):")
        w.indented {
            w.docstring("""
            log q(z|x) − log p(z) at the sampled z for the mixture prior (\(components) components, parameters
            prior.mean.k, prior.log_std.k, prior.logit.k), one-sample Monte Carlo. log p(z) does not factorise
            over dimensions: each dimension gets 1/\(latents) of it, so the sum over dimensions is the KL.
            """)
            w.line("log_q = -(0.5 * (\(xp).square(eps) + logvar))")
            w.line("terms, logits = [], []")
            w.line("for k in range(1, \(components + 1)):")
            w.indented {
                w.line("log_std = params[f\"prior.log_std.{k}\"]")
                w.line("standardised = (z - params[f\"prior.mean.{k}\"]) * \(xp).exp(-log_std)")
                w.line("per_dimension = 0.5 * \(xp).square(standardised) + log_std")
                w.line("logit = params[f\"prior.logit.{k}\"]")
                w.line("terms.append(-sum_features(per_dimension) + logit)")
                w.line("logits.append(logit)")
            }
            w.line("log_prior = log_sum_exp(terms) - log_sum_exp(logits)", comment: "[batch]")
            w.line("return log_q - (\(Python.float32(1 / Float(latents))) * log_prior).reshape(-1, 1)")
        }
    }

    /// The body of `loss_terms` after the encoder and decoder ran: `nll`, `kl_per_dim` and the loss.
    /// Leaves `loss`, `nll`, `kl`, `kl_per_dim` bound.
    func writeObjective(_ w: PythonWriter) {
        let objective = model.objective
        let a: Float = objective.reconstruction == .mean ? 1 / Float(features) : 1
        let b: Float = objective.klReduction == .mean ? 1 / Float(latents) : 1
        func scaled(_ c: Float, _ v: String) -> String { c == 1 ? v : "\(Python.float32(c)) * \(v)" }
        w.line("nll = sum_features(negative_log_likelihood(x, p, inv_batch))", comment: "−log p(x|z) per example, summed over the \(features) features")
        w.line("kl_per_dim = kl_divergence(\(klArguments))", comment: "[batch, \(latents)]")
        w.line("kl = sum_features(kl_per_dim)")
        var recon = scaled(a, "nll")
        let reductionNote = "reconstruction: \(objective.reconstruction.rawValue) (a = \(a == 1 ? "1" : "1/\(features)")), kl_reduction: \(objective.klReduction.rawValue) (b = \(b == 1 ? "1" : "1/\(latents)"))"
        w.comment(reductionNote)
        if case .geco = objective.beta {
            w.line("recon_term = f32(hypers.get(\"recon_weight\", 1.0)) * \(a == 1 ? "nll" : "(\(recon))")", comment: "GECO's λ weights the reconstruction")
            recon = "recon_term"
        } else if a != 1 {
            w.line("recon_term = \(recon)")
            recon = "recon_term"
        }
        switch objective.beta {
        case .capacity(let gamma, _, _, _):
            w.comment("capacity annealing (Burgess et al.): γ·|b·KL̄ − C(t)| on the batch-mean KL")
            w.line("kl_mean = \(scaled(b, "(inv_batch * sum_batch(kl))"))")
            w.line("gap = \(d.xp).abs(kl_mean - f32(hypers.get(\"capacity\", 0.0)))")
            w.line("loss = inv_batch * sum_batch(\(recon)) + \(Python.float32(Float(gamma))) * gap")
        case .freeBits(let lambda, _):
            w.comment("free bits (Kingma et al.): β·b·Σ_j max(λ, batch-mean KL_j)")
            w.line("floored = \(d.maximum(Python.float32(Float(lambda)), "inv_batch * sum_batch(kl_per_dim)"))")
            w.line("loss = inv_batch * sum_batch(\(recon)) + f32(hypers.get(\"beta\", 1.0)) * \(b == 1 ? "floored.sum()" : "(\(scaled(b, "floored.sum()")))")")
        default:
            let beta = "f32(hypers.get(\"beta\", 1.0))"
            w.line("loss = inv_batch * sum_batch(\(recon) + \(scaled(b, beta)) * kl)", comment: "the batch mean of a·nll + b·β·KL")
        }
        if objective.batch == .sum {
            w.line("loss = f32(x.shape[0]) * loss", comment: "batch: sum")
        }
    }

    // MARK: the β schedule (plain Python, the same for every target)

    /// `class BetaController`: the hypers of each step as `BetaController` sets them.
    func writeController(_ w: PythonWriter) {
        let schedule = model.objective.beta
        w.line("class BetaController:")
        w.indented {
            w.docstring("""
            The weighting hyper-parameters of each step, as vaec's BetaController sets them
            (Semantics/BetaSchedule.swift, Training/BetaController.swift): \(schedule.summary).
            hypers() is called before a step, observe() after it with the batch's mean reconstruction
            and KL per example (controllers update from them; fixed schedules ignore them).
            """)
            w.line("def __init__(self):")
            w.indented {
                switch schedule {
                case .geco(_, _, let lambda, _): w.line("self.state = [\(Python.number(lambda)), 0.0, 0.0]", comment: "λ, moving average of the constraint, steps seen")
                case .piControl(_, _, _, let minBeta, _): w.line("self.state = [0.0, \(Python.number(minBeta))]", comment: "integral, β")
                default: w.line("self.state = []")
                }
            }
            w.blank()
            w.line("def hypers(self, step, steps_per_epoch, total_steps):")
            w.indented { writeHypers(w, schedule) }
            w.blank()
            w.line("def observe(self, reconstruction, kl):")
            w.indented { writeObserve(w, schedule) }
        }
    }

    private func position(_ unit: ScheduleUnit) -> String {
        unit == .steps ? "float(step)" : "float(step // max(1, steps_per_epoch))"
    }

    private func writeHypers(_ w: PythonWriter, _ schedule: BetaSchedule) {
        let n = Python.number
        switch schedule {
        case .constant(let beta):
            w.line("return {\"beta\": \(n(beta))}")
        case .normalized(let betaNorm, let features, let latents):
            w.line("return {\"beta\": \(n(betaNorm)) * \(features) / \(latents)}", comment: "β = β_norm·N/M")
        case .warmup(let maximum, let length, let unit):
            w.line("t = \(position(unit))")
            w.line("return {\"beta\": \(n(maximum)) * min(1.0, t / max(1, \(length)))}")
        case .cyclical(let maximum, let cycles, let ratio, let ramp, let unit):
            w.line("total = " + (unit == .steps ? "float(total_steps)" : "float(total_steps // max(1, steps_per_epoch))"))
            w.line("period = total / max(1, \(cycles))")
            w.line("if period <= 0:")
            w.indented { w.line("return {\"beta\": \(n(maximum))}") }
            w.line("t = \(position(unit))")
            w.line("tau = (t - math.floor(t / period) * period) / period")
            w.line("x = min(1.0, tau / \(n(ratio)))")
            w.line("if x >= 1:")
            w.indented { w.line("return {\"beta\": \(n(maximum))}") }
            switch ramp {
            case .linear: w.line("return {\"beta\": \(n(maximum)) * x}")
            case .sigmoid: w.line("return {\"beta\": \(n(maximum)) / (1 + math.exp(-(12 * x - 6)))}")
            case .cosine: w.line("return {\"beta\": \(n(maximum)) * (0.5 - 0.5 * math.cos(math.pi * x))}")
            }
        case .capacity(_, let cMax, let length, let unit):
            w.line("t = \(position(unit))")
            w.line("return {\"beta\": 1.0, \"capacity\": \(n(cMax)) * min(1.0, t / max(1, \(length)))}")
        case .freeBits(_, let beta):
            w.line("return {\"beta\": \(n(beta))}")
        case .geco:
            w.line("return {\"beta\": 1.0, \"recon_weight\": self.state[0]}")
        case .piControl:
            w.line("return {\"beta\": self.state[1]}")
        }
    }

    private func writeObserve(_ w: PythonWriter, _ schedule: BetaSchedule) {
        let n = Python.number
        switch schedule {
        case .geco(let kappa, let alpha, _, let momentum):
            w.comment("C_ma ← momentum·C_ma + (1 − momentum)·(recon − κ), from the first value; λ ← λ·exp(α·C_ma) in [1e-6, 1e6]")
            w.line("constraint = reconstruction - \(n(kappa))")
            w.line("average = constraint if self.state[2] == 0 else \(n(momentum)) * self.state[1] + (1 - \(n(momentum))) * constraint")
            w.line("self.state[1] = average")
            w.line("self.state[2] += 1")
            w.line("self.state[0] = min(1e6, max(1e-6, self.state[0] * math.exp(\(n(alpha)) * average)))")
        case .piControl(let target, let kp, let ki, let minBeta, let maxBeta):
            w.comment("ControlVAE: P = K_p/(1 + exp(e)), I accumulates −K_i·e while β stays within its bounds (anti-windup)")
            w.line("error = \(n(target)) - kl")
            w.line("proportional = \(n(kp)) / (1 + math.exp(min(50.0, error)))")
            w.line("integral = self.state[0] - \(n(ki)) * error")
            w.line("beta = proportional + integral + \(n(minBeta))")
            w.line("if \(n(minBeta)) <= beta <= \(n(maxBeta)):")
            w.indented { w.line("self.state[0] = integral") }
            w.line("self.state[1] = min(\(n(maxBeta)), max(\(n(minBeta)), beta))")
        default:
            w.line("pass")
        }
    }
}
