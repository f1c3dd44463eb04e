import XCTest
@testable import VAECore

/// Issue 4: every KL weighting against its published rule.
final class WeightingTests: XCTestCase {
    /// frange_cycle_linear(n_iter=100, start=0, stop=1, n_cycle=4, ratio=0.5), steps 0…99 (domain.md).
    static let cyclicalReference: [Double] = {
        let cycle: [Double] = [0, 0.08, 0.16, 0.24, 0.32, 0.4, 0.48, 0.56, 0.64, 0.72, 0.8, 0.88, 0.96] + Array(repeating: 1, count: 12)
        return Array((0..<4).map { _ in cycle }.joined())
    }()

    func testCyclicalLinearMatchesReferenceCode() {
        let schedule = BetaSchedule.cyclical(max: 1, cycles: 4, ratio: 0.5, ramp: .linear, unit: .steps)
        XCTAssertEqual(Self.cyclicalReference.count, 100)
        for (step, expected) in Self.cyclicalReference.enumerated() {
            XCTAssertEqual(schedule.beta(atStep: step, stepsPerEpoch: 10, totalSteps: 100), expected, accuracy: 1e-9, "step \(step)")
        }
    }

    func testCyclicalRampsRiseFromZeroToMax() {
        for ramp in Ramp.allCases {
            let s = BetaSchedule.cyclical(max: 2, cycles: 2, ratio: 0.5, ramp: ramp, unit: .steps)
            let values = (0..<100).map { s.beta(atStep: $0, stepsPerEpoch: 10, totalSteps: 100) }
            XCTAssertLessThan(values[0], 0.01, "\(ramp) starts near 0")
            XCTAssertEqual(values[25], 2, "\(ramp) holds the maximum after the ramp")
            XCTAssertLessThan(values[50], 0.01, "\(ramp) restarts at the second cycle")
            for i in 1..<25 { XCTAssertGreaterThanOrEqual(values[i], values[i - 1], "\(ramp) rises monotonically") }
        }
        // The cosine ramp is ½ − ½cos(πx): at x = ½ exactly half the maximum.
        let cosine = BetaSchedule.cyclical(max: 1, cycles: 1, ratio: 1, ramp: .cosine, unit: .steps)
        XCTAssertEqual(cosine.beta(atStep: 50, stepsPerEpoch: 10, totalSteps: 100), 0.5, accuracy: 1e-12)
    }

    func testCyclicalCountsEpochsWhenAsked() {
        let s = BetaSchedule.cyclical(max: 1, cycles: 2, ratio: 0.5, ramp: .linear, unit: .epochs)
        // 10 epochs of 31 steps: period 5 epochs, ramp over 2.5 epochs; β constant within an epoch.
        XCTAssertEqual(s.beta(atStep: 0, stepsPerEpoch: 31, totalSteps: 310), 0)
        XCTAssertEqual(s.beta(atStep: 30, stepsPerEpoch: 31, totalSteps: 310), 0)
        XCTAssertEqual(s.beta(atStep: 31, stepsPerEpoch: 31, totalSteps: 310), 0.4, accuracy: 1e-12)
        XCTAssertEqual(s.beta(atStep: 31 * 5, stepsPerEpoch: 31, totalSteps: 310), 0)
    }

    func testWarmupIsLinearThenFlat() {
        let s = BetaSchedule.warmup(max: 2, length: 100, unit: .steps)
        XCTAssertEqual(s.beta(atStep: 0, stepsPerEpoch: 31, totalSteps: 310), 0)
        XCTAssertEqual(s.beta(atStep: 25, stepsPerEpoch: 31, totalSteps: 310), 0.5, accuracy: 1e-12)
        XCTAssertEqual(s.beta(atStep: 100, stepsPerEpoch: 31, totalSteps: 310), 2)
        XCTAssertEqual(s.beta(atStep: 300, stepsPerEpoch: 31, totalSteps: 310), 2)
        let byEpoch = BetaSchedule.warmup(max: 1, length: 4, unit: .epochs)
        XCTAssertEqual(byEpoch.beta(atStep: 62, stepsPerEpoch: 31, totalSteps: 310), 0.5, accuracy: 1e-12)   // epoch 2 of 4
    }

    func testNormalizedBetaAndCapacity() {
        XCTAssertEqual(BetaSchedule.normalized(betaNorm: 0.1, features: 784, latents: 20)
            .beta(atStep: 7, stepsPerEpoch: 31, totalSteps: 310), 3.92, accuracy: 1e-12)
        let c = BetaSchedule.capacity(gamma: 100, maxCapacity: 25, length: 250, unit: .steps)
        XCTAssertEqual(c.capacity(atStep: 0, stepsPerEpoch: 31), 0)
        XCTAssertEqual(c.capacity(atStep: 100, stepsPerEpoch: 31), 10, accuracy: 1e-12)
        XCTAssertEqual(c.capacity(atStep: 1000, stepsPerEpoch: 31), 25)
    }

    func testEffectiveBetaForAllFourReductions() {
        func factor(_ r: Reduction, _ k: Reduction) -> Double {
            var o = ObjectiveSpec(); o.reconstruction = r; o.klReduction = k
            return o.effectiveBetaFactor(features: 784, latents: 20)
        }
        XCTAssertEqual(factor(.sum, .sum), 1)
        XCTAssertEqual(factor(.mean, .sum), 784, accuracy: 1e-9)
        XCTAssertEqual(factor(.mean, .mean), 784.0 / 20, accuracy: 1e-9)
        XCTAssertEqual(factor(.sum, .mean), 1.0 / 20, accuracy: 1e-12)
    }

    /// GECO on a scripted sequence of reconstructions: C_ma and λ follow the published update.
    func testGECOUpdateOnScriptedLosses() {
        var controller = BetaController(schedule: .geco(kappa: 100, alpha: 0.01, initialLambda: 1, momentum: 0.5))
        var lambda = 1.0, average = 0.0
        for (i, recon) in [130.0, 120, 95, 90, 100].enumerated() {
            XCTAssertEqual(controller.hypers(step: i, epoch: 0, stepsPerEpoch: 10, totalSteps: 50)["recon_weight"]!, lambda, accuracy: 1e-12)
            controller.observe(reconstruction: recon, kl: 5)
            let constraint = recon - 100
            average = i == 0 ? constraint : 0.5 * average + 0.5 * constraint
            lambda *= Foundation.exp(0.01 * average)
            XCTAssertEqual(controller.lambda!, lambda, accuracy: 1e-12)
        }
        // A reconstruction above κ raises λ (β_eff = 1/λ falls): the constraint wins.
        XCTAssertGreaterThan(controller.lambda!, 1)
        XCTAssertEqual(BetaController.effectiveBeta(["beta": 1, "recon_weight": 4]), 0.25)
    }

    /// PI control on scripted KLs: β rises while the KL is below target, falls when above, stays clipped.
    func testPIControlOnScriptedKLs() {
        var controller = BetaController(schedule: .piControl(target: 10, kp: 0.01, ki: 0.001, minBeta: 0, maxBeta: 1))
        func beta() -> Double { controller.hypers(step: 0, epoch: 0, stepsPerEpoch: 1, totalSteps: 1)["beta"]! }
        XCTAssertEqual(beta(), 0)
        // KL far above target: e < 0, P ≈ K_p, the integral grows by K_i·|e| each step.
        var integral = 0.0
        for kl in [30.0, 30, 30] {
            controller.observe(reconstruction: 100, kl: kl)
            let e = 10 - kl
            integral -= 0.001 * e
            XCTAssertEqual(beta(), 0.01 / (1 + Foundation.exp(e)) + integral, accuracy: 1e-12)
        }
        let high = beta()
        // KL below target: β falls.
        controller.observe(reconstruction: 100, kl: 0)
        XCTAssertLessThan(beta(), high)
        // Clipped to [min, max] however long the error lasts.
        for _ in 0..<10_000 { controller.observe(reconstruction: 100, kl: 1000) }
        XCTAssertEqual(beta(), 1)
        for _ in 0..<10_000 { controller.observe(reconstruction: 100, kl: 0) }
        XCTAssertGreaterThanOrEqual(beta(), 0)
        XCTAssertLessThan(beta(), 0.02)
    }

    /// The sampled (Monte-Carlo) KL's mean over many draws matches the analytic KL on a Gaussian prior.
    func testSampledKLMeanMatchesAnalytic() throws {
        func compiled(_ estimator: String) throws -> CompiledProgram {
            let source = """
            model kl
            input x: [3]
            latent z: [4] ~ normal(0.5, 1.5)
            encoder q(z | x) {
              z ~ normal(mean: linear(x, 4), logvar: linear(x, 4))
            }
            decoder p(x | z) {
              x ~ bernoulli(logits: linear(z, 3))
            }
            objective { kl: \(estimator) }
            """
            return try Compiler.compile(source: SourceFile(path: "kl.vae", text: source)).program
        }
        let batch = 4000
        var means: [Double] = []
        for estimator in ["analytic", "sampled"] {
            let program = try compiled(estimator)
            let parameters = ParameterStore(specs: program.model.parameters)
            var rng = RandomSource(seed: 3)
            parameters.initialize(random: &rng)
            let e = Executable(graph: program.graph, outputs: [OutputName.kl], batch: batch)
            for (i, spec) in program.model.parameters.enumerated() {
                if let id = e.uses(.parameter(spec.name)) { e.bind(id, to: parameters.pointers[i]) }   // the decoder's are unused
            }
            let x = UnsafeMutablePointer<Float>.allocate(capacity: batch * 3)
            let noise = UnsafeMutablePointer<Float>.allocate(capacity: batch * 4)
            defer { x.deallocate(); noise.deallocate() }
            // The same example repeated: the batch mean of the sampled KL estimates that example's KL.
            for i in 0..<batch * 3 { x[i] = [0.2, 0.9, 0.5][i % 3] }
            var noiseRNG = RandomSource(seed: 11)
            noiseRNG.fillNormal(noise, count: batch * 4)
            e.bind(e.uses(.input("x"))!, to: x)
            if let id = e.uses(.noise("z")) { e.bind(id, to: noise) }
            e.run()
            means.append(Double(e.scalar(OutputName.kl)) / Double(batch))
        }
        XCTAssertGreaterThan(means[0], 0.1)
        // Standard error of a 4000-draw mean of this estimator is ~3% here; allow 8%.
        XCTAssertEqual(means[1], means[0], accuracy: 0.08 * means[0])
    }

    func testCompileReportsKerasMeanTrap() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let result = try Compiler.compile(path: url.appendingPathComponent("samples/keras_mean_bce.vae").path)
        XCTAssertEqual(WeightingReport.effectiveBeta(result.model)!, 784, accuracy: 1e-9)
        XCTAssertTrue(WeightingReport.summary(result.model).contains("effective β = 784"))
        XCTAssertEqual(result.warnings.count, 1)
        XCTAssertTrue(result.warnings[0].contains("784") && result.warnings[0].contains("collapsed posterior"))
        let fixed = try Compiler.compile(path: url.appendingPathComponent("samples/keras_fixed.vae").path)
        XCTAssertTrue(fixed.warnings.isEmpty)
    }

    func testScheduleWordsParseAndBadOnesAreOneError() throws {
        func objective(_ beta: String) throws -> ObjectiveSpec {
            let text = """
            model m
            input x: [4]
            latent z: [2] ~ normal(0, 1)
            encoder q(z | x) { z ~ normal(mean: linear(x, 2), logvar: linear(x, 2)) }
            decoder p(x | z) { x ~ bernoulli(logits: linear(z, 4)) }
            objective { beta: \(beta) }
            """
            return try Compiler.compile(source: SourceFile(path: "m.vae", text: text)).model.objective
        }
        XCTAssertEqual(try objective("warmup(max: 1, epochs: 3)").beta, .warmup(max: 1, length: 3, unit: .epochs))
        XCTAssertEqual(try objective("cyclical(cycles: 2, ramp: cosine, per: epochs)").beta,
                       .cyclical(max: 1, cycles: 2, ratio: 0.5, ramp: .cosine, unit: .epochs))
        XCTAssertEqual(try objective("free_bits(0.25)").beta, .freeBits(lambda: 0.25, beta: 1))
        XCTAssertEqual(try objective("normalized(0.1)").beta, .normalized(betaNorm: 0.1, features: 4, latents: 2))
        for bad in ["warmup(max: 1)", "cyclical(ramp: square)", "geco(alpha: 1)", "warmpu(steps: 3)", "capacity(gamma: 0, max: 1, steps: 2)"] {
            do {
                _ = try objective(bad)
                XCTFail("\(bad) should not compile")
            } catch let failure as CompileFailure {
                XCTAssertEqual(failure.diagnostics.filter { $0.severity == .error }.count, 1, bad)
                XCTAssertEqual(failure.source.location(of: failure.diagnostics[0].range.start).line, 6, bad)
            }
        }
    }

    /// The mixture prior's sampled KL equals log q(z|x) − log p(z) computed independently in Double from
    /// the same parameters, noise and z, and an analytic KL against a mixture is refused with one error.
    func testMixturePriorSampledKLAgainstDirectComputation() throws {
        let text = """
        model mix
        input x: [3]
        latent z: [2] ~ mixture(components: 3)
        encoder q(z | x) { z ~ normal(mean: linear(x, 2), logvar: linear(x, 2)) }
        decoder p(x | z) { x ~ bernoulli(logits: linear(z, 3)) }
        objective { kl: sampled }
        """
        let program = try Compiler.compile(source: SourceFile(path: "mix.vae", text: text)).program
        XCTAssertEqual(program.model.parameters.filter { $0.name.hasPrefix("prior.") }.count, 9)
        let parameters = ParameterStore(specs: program.model.parameters)
        var rng = RandomSource(seed: 5)
        parameters.initialize(random: &rng)
        for k in 1...3 {   // distinct weights and spreads, so every term matters
            parameters.set(parameters.index(of: Prior.mixtureNames(k).logit)!, [Float(k) * 0.7 - 1])
            parameters.set(parameters.index(of: Prior.mixtureNames(k).logStd)!, [Float(k) * 0.3 - 0.5, 0.2])
        }
        let batch = 5
        let e = Executable(graph: program.graph, outputs: [OutputName.kl, OutputName.posteriorMean, OutputName.posteriorLogVariance], batch: batch)
        for (i, spec) in program.model.parameters.enumerated() {
            if let id = e.uses(.parameter(spec.name)) { e.bind(id, to: parameters.pointers[i]) }
        }
        var x: [Float] = (0..<batch * 3).map { Float($0 % 7) / 7 }
        var eps: [Float] = (0..<batch * 2).map { Float($0) * 0.37 - 1.5 }
        x.withUnsafeMutableBufferPointer { e.bind(e.uses(.input("x"))!, to: $0.baseAddress!) }
        eps.withUnsafeMutableBufferPointer { e.bind(e.uses(.noise("z"))!, to: $0.baseAddress!) }
        e.run()
        let mu = e.value(OutputName.posteriorMean)!, logvar = e.value(OutputName.posteriorLogVariance)!
        func values(_ name: String) -> [Double] { parameters.values(parameters.index(of: name)!).map(Double.init) }
        let logits = (1...3).map { values(Prior.mixtureNames($0).logit)[0] }
        let logNormaliser = Foundation.log(logits.map { Foundation.exp($0) }.reduce(0, +))
        var expected = 0.0
        for b in 0..<batch {
            var logQ = 0.0
            var z: [Double] = []
            for j in 0..<2 {
                let sigma = Foundation.exp(0.5 * Double(logvar[b * 2 + j]))
                let zj = Double(mu[b * 2 + j]) + sigma * Double(eps[b * 2 + j])
                z.append(zj)
                logQ += -0.5 * pow(Double(eps[b * 2 + j]), 2) - Foundation.log(sigma) - 0.5 * Foundation.log(2 * Double.pi)
            }
            var density = 0.0
            for k in 1...3 {
                let m = values(Prior.mixtureNames(k).mean), s = values(Prior.mixtureNames(k).logStd).map { Foundation.exp($0) }
                var component = Foundation.exp(logits[k - 1] - logNormaliser)
                for j in 0..<2 {
                    component *= Foundation.exp(-0.5 * pow((z[j] - m[j]) / s[j], 2)) / (s[j] * (2 * Double.pi).squareRoot())
                }
                density += component
            }
            expected += logQ - Foundation.log(density)
        }
        XCTAssertEqual(Double(e.scalar(OutputName.kl)), expected, accuracy: 1e-4 * max(1, abs(expected)))

        let analytic = text.replacingOccurrences(of: "kl: sampled", with: "kl: analytic")
        XCTAssertThrowsError(try Compiler.compile(source: SourceFile(path: "mix.vae", text: analytic))) { error in
            let failure = error as! CompileFailure
            XCTAssertEqual(failure.diagnostics.count, 1)
            XCTAssertTrue(failure.diagnostics[0].message.contains("mixture prior has no closed-form KL"))
        }
    }
}
