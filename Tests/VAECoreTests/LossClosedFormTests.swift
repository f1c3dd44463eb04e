import Foundation
import XCTest
@testable import VAECore

/// The compiled loss terms against references computed independently in Double: the Bernoulli and
/// Gaussian negative log-likelihoods, the analytic KL (checked against numerical integration of
/// q·log(q/p)), and the weighting the reductions and β add up to.
///
/// The test model has no hidden layers; with every weight set to 0 the biases *are* the posterior's mean
/// and log-variance and the decoder's output, so each term is evaluated at values the test chooses.
final class LossClosedFormTests: XCTestCase {
    static let features = 5, latents = 3, batch = 4

    static func source(prior: String = "normal(0, 1)", likelihood: String = "bernoulli(logits: linear(z, 5))",
                       objective: String = "") -> String {
        """
        model closed_form
        input  x: [\(features)]
        latent z: [\(latents)] ~ \(prior)
        encoder q(z | x) {
          z ~ normal(mean: linear(x, \(latents)), logvar: linear(x, \(latents)))
        }
        decoder p(x | z) {
          x ~ \(likelihood)
        }
        objective {
        \(objective)
        }
        """
    }

    /// Runs the compiled graph with zero weights and the given biases (the posterior's mean and log-variance,
    /// the decoder's output) on `data` ([batch, features]).
    func evaluate(_ result: Compiler.Result, mean: [Double], logVariance: [Double], decoded: [Double], data: [Float],
                  beta: Float = 1) -> GraphRun {
        let outputs = [OutputName.loss, OutputName.reconstruction, OutputName.kl, OutputName.klPerDimension,
                       OutputName.decoderOutput]
        let run = GraphRun(graph: result.program.graph, outputs: outputs, batch: Self.batch)
        let biases: [String: [Double]] = ["encoder.z.mean.bias": mean, "encoder.z.logvar.bias": logVariance]
        for spec in result.model.parameters {
            if spec.name.hasSuffix(".weight") {
                run.bind(.parameter(spec.name), [Float](repeating: 0, count: spec.count))
            } else {
                let values = biases[spec.name] ?? decoded
                XCTAssertEqual(values.count, spec.count, spec.name)
                run.bind(.parameter(spec.name), values.map { Float($0) })
            }
        }
        run.bind(.input("x"), data)
        var random = RandomSource(seed: 5)
        run.bind(.noise("z"), random.normals(Self.batch * Self.latents))
        run.executable.setHyper("beta", beta)
        run.executable.setHyper("1/batch", 1 / Float(Self.batch))
        run.executable.setHyper("batch", Float(Self.batch))
        run.run()
        return run
    }

    static let binaryData: [Float] = [
        1, 0, 1, 0, 1,
        0, 1, 0, 1, 0,
        1, 1, 1, 1, 1,
        0, 0, 0, 0, 1,
    ]

    // MARK: - Likelihoods

    /// −log p(x|l) = −x·log σ(l) − (1−x)·log(1−σ(l)), written with log(1+e^∓l) to stay exact at ±30.
    func testBernoulliNegativeLogLikelihoodMatchesTheCrossEntropy() throws {
        let result = try TestModels.compile(Self.source())
        let logits: [Double] = [-30, -2.5, 0, 0.7, 30]
        let run = evaluate(result, mean: [0, 0, 0], logVariance: [0, 0, 0], decoded: logits, data: Self.binaryData)
        var expected = 0.0
        for b in 0..<Self.batch {
            for (i, l) in logits.enumerated() {
                let x = Double(Self.binaryData[b * Self.features + i])
                let minusLogP = Foundation.log(1 + Foundation.exp(-l))         // −log σ(l)
                let minusLogOneMinusP = Foundation.log(1 + Foundation.exp(l))  // −log(1 − σ(l))
                expected += x * minusLogP + (1 - x) * minusLogOneMinusP
            }
        }
        XCTAssertEqual(Double(run.scalar(OutputName.reconstruction)), expected, accuracy: 1e-5 * expected)
        // Also the form the brief states: Σ softplus(l) − x·l.
        var softplusForm = 0.0
        for b in 0..<Self.batch {
            for (i, l) in logits.enumerated() {
                softplusForm += Foundation.log1p(Foundation.exp(l)) - Double(Self.binaryData[b * Self.features + i]) * l
            }
        }
        XCTAssertEqual(softplusForm, expected, accuracy: 1e-9 * expected)
        // The decoder's output is the logits themselves.
        XCTAssertEqual(run.values(OutputName.decoderOutput), (0..<Self.batch).flatMap { _ in logits.map { Float($0) } })
    }

    /// At logits ±30 a naive log(sigmoid) loses everything; the compiled loss is exact per entry.
    func testBernoulliIsExactAtSaturatedLogits() throws {
        let result = try TestModels.compile(Self.source())
        let logits: [Double] = [30, -30, 30, -30, 0]
        // Right answers everywhere except the last column: a loss of 4·(4·log(1+e^−30) + log 2).
        let data: [Float] = (0..<Self.batch).flatMap { _ in [1, 0, 1, 0, 1] as [Float] }
        let run = evaluate(result, mean: [0, 0, 0], logVariance: [0, 0, 0], decoded: logits, data: data)
        let expected = 4 * (4 * Foundation.log1p(Foundation.exp(-30.0)) + Foundation.log(2))
        XCTAssertEqual(Double(run.scalar(OutputName.reconstruction)), expected, accuracy: 1e-6)
        // Confidently wrong: 30 nats per entry, not inf or nan.
        let wrong: [Float] = (0..<Self.batch).flatMap { _ in [0, 1, 0, 1, 0] as [Float] }
        let run2 = evaluate(result, mean: [0, 0, 0], logVariance: [0, 0, 0], decoded: logits, data: wrong)
        let expected2 = 4 * (4 * (30 + Foundation.log1p(Foundation.exp(-30.0))) + Foundation.log(2))
        XCTAssertEqual(Double(run2.scalar(OutputName.reconstruction)), expected2, accuracy: 1e-4)
    }

    /// −log N(x; m, σ²) with a fixed σ, from the density itself.
    func testGaussianFixedSigmaNegativeLogLikelihood() throws {
        for sigma in [0.1, 1.0, 2.5] {
            let result = try TestModels.compile(Self.source(likelihood: "normal(mean: linear(z, 5), sigma: \(sigma))"))
            let means: [Double] = [-1, 0, 0.25, 0.5, 2]
            var random = RandomSource(seed: 11)
            let data = random.uniform(Self.batch * Self.features, in: -1...2)
            let run = evaluate(result, mean: [0, 0, 0], logVariance: [0, 0, 0], decoded: means, data: data)
            var expected = 0.0
            for b in 0..<Self.batch {
                for (i, m) in means.enumerated() {
                    let x = Double(data[b * Self.features + i])
                    let density = Foundation.exp(-(x - m) * (x - m) / (2 * sigma * sigma)) / (sigma * (2 * Double.pi).squareRoot())
                    expected -= Foundation.log(density)
                }
            }
            XCTAssertEqual(Double(run.scalar(OutputName.reconstruction)), expected, accuracy: 1e-5 * max(1, abs(expected)),
                           "sigma \(sigma)")
        }
    }

    // MARK: - KL

    /// KL(N(μ, σ²) ‖ N(m, s²)) by Simpson's rule over μ ± 12σ: a reference that shares no formula
    /// with the compiler's closed form.
    static func integratedKL(mean mu: Double, logVariance: Double, priorMean m: Double, priorStd s: Double) -> Double {
        let sigma = Foundation.exp(logVariance / 2)
        func logNormal(_ z: Double, _ mean: Double, _ std: Double) -> Double {
            -0.5 * ((z - mean) / std) * ((z - mean) / std) - Foundation.log(std) - 0.5 * Foundation.log(2 * Double.pi)
        }
        let n = 4000, a = mu - 12 * sigma, h = 24 * sigma / Double(n)
        var total = 0.0
        for k in 0...n {
            let z = a + Double(k) * h
            let lq = logNormal(z, mu, sigma)
            let f = Foundation.exp(lq) * (lq - logNormal(z, m, s))
            total += f * (k == 0 || k == n ? 1 : (k % 2 == 1 ? 4 : 2))
        }
        return total * h / 3
    }

    func testAnalyticKLAgainstTheClosedFormAndIntegration() throws {
        let mean: [Double] = [0.5, -1.2, 0]
        let logVariance: [Double] = [0.3, -0.7, 0]
        let priors: [(source: String, mean: Double, std: Double)] = [
            ("normal(0, 1)", 0, 1), ("normal(0, 2)", 0, 2), ("normal(1, 1)", 1, 1), ("normal(mean: -0.5, std: 0.3)", -0.5, 0.3),
        ]
        for prior in priors {
            let result = try TestModels.compile(Self.source(prior: prior.source))
            let run = evaluate(result, mean: mean, logVariance: logVariance, decoded: [0, 0, 0, 0, 0], data: Self.binaryData)
            let perDimension = run.values(OutputName.klPerDimension)
            XCTAssertEqual(perDimension.count, Self.latents)
            var total = 0.0
            for j in 0..<Self.latents {
                let integrated = Self.integratedKL(mean: mean[j], logVariance: logVariance[j], priorMean: prior.mean, priorStd: prior.std)
                let variance = Foundation.exp(logVariance[j])
                let closed = 0.5 * ((variance + (mean[j] - prior.mean) * (mean[j] - prior.mean)) / (prior.std * prior.std)
                                    - 1 - logVariance[j] + 2 * Foundation.log(prior.std))
                XCTAssertEqual(closed, integrated, accuracy: 1e-9, "\(prior.source): the closed form itself, dimension \(j)")
                // The output sums over the batch: every example has the same posterior here.
                XCTAssertEqual(Double(perDimension[j]) / Double(Self.batch), integrated, accuracy: 1e-5 * max(1, integrated),
                               "\(prior.source): KL of dimension \(j)")
                total += integrated
            }
            XCTAssertEqual(Double(run.scalar(OutputName.kl)) / Double(Self.batch), total, accuracy: 1e-5 * max(1, total), prior.source)
        }
        // The standard-normal case in the textbook form ½Σ(σ² + μ² − 1 − log σ²).
        let textbook = zip(mean, logVariance).reduce(0.0) { $0 + 0.5 * (Foundation.exp($1.1) + $1.0 * $1.0 - 1 - $1.1) }
        let result = try TestModels.compile(Self.source())
        let run = evaluate(result, mean: mean, logVariance: logVariance, decoded: [0, 0, 0, 0, 0], data: Self.binaryData)
        XCTAssertEqual(Double(run.scalar(OutputName.kl)) / Double(Self.batch), textbook, accuracy: 1e-6)
    }

    func testKLIsZeroWhenThePosteriorIsThePrior() throws {
        let result = try TestModels.compile(Self.source(prior: "normal(1, 2)"))
        let logVariance = [Double](repeating: 2 * Foundation.log(2), count: Self.latents)
        let run = evaluate(result, mean: [1, 1, 1], logVariance: logVariance, decoded: [0, 0, 0, 0, 0], data: Self.binaryData)
        XCTAssertEqual(run.scalar(OutputName.kl), 0, accuracy: 1e-5)
    }

    // MARK: - Weighting

    func testEffectiveBetaFactorForTheFourReductions() {
        let cases: [(Reduction, Reduction, Double)] = [
            (.sum, .sum, 1), (.mean, .sum, 784), (.sum, .mean, 1.0 / 20), (.mean, .mean, 784.0 / 20),
        ]
        for (reconstruction, kl, expected) in cases {
            var objective = ObjectiveSpec()
            objective.reconstruction = reconstruction
            objective.klReduction = kl
            XCTAssertEqual(objective.effectiveBetaFactor(features: 784, latents: 20), expected, accuracy: 1e-12,
                           "reconstruction \(reconstruction), kl \(kl)")
        }
    }

    /// The compiled loss is what the factor says: loss = (a·recon + b·β·KL) / B with a = 1 or 1/N and
    /// b = 1 or 1/M (times B for `batch: sum`), so loss / a = recon + β·factor·KL per batch mean.
    func testTheCompiledLossWeighsTheTermsAsTheFactorSays() throws {
        let beta: Float = 0.7
        for reconstruction in Reduction.allCases {
            for kl in Reduction.allCases {
                for batch in Reduction.allCases {
                    let objective = "reconstruction: \(reconstruction)\nkl_reduction: \(kl)\nbatch: \(batch)\nbeta: \(beta)"
                    let result = try TestModels.compile(Self.source(objective: objective))
                    let run = evaluate(result, mean: [0.5, -1.2, 0], logVariance: [0.3, -0.7, 0.1],
                                       decoded: [-1, 0.5, 2, 0, 1], data: Self.binaryData, beta: beta)
                    let recon = Double(run.scalar(OutputName.reconstruction))
                    let klTotal = Double(run.scalar(OutputName.kl))
                    let a = reconstruction == .mean ? 1 / Double(Self.features) : 1
                    let factor = result.model.objective.effectiveBetaFactor(features: Self.features, latents: Self.latents)
                    let perBatch = batch == .mean ? 1 / Double(Self.batch) : 1
                    let expected = a * (recon + Double(beta) * factor * klTotal) * perBatch
                    XCTAssertEqual(Double(run.scalar(OutputName.loss)), expected, accuracy: 1e-5 * max(1, abs(expected)),
                                   "reconstruction \(reconstruction), kl_reduction \(kl), batch \(batch)")
                }
            }
        }
    }

    /// The classic trap: a per-pixel mean reconstruction with a summed KL on 784 pixels is β_eff = 784.
    func testMeanReconstructionWithSummedKLOn784FeaturesWarns() throws {
        func model(_ reconstruction: String) -> String {
            TestModels.mlp(inputs: 784, hidden: 8, latents: 20, objective: "reconstruction: \(reconstruction)\nkl_reduction: sum")
        }
        let trap = try TestModels.compile(model("mean"))
        XCTAssertEqual(trap.warnings.count, 1, trap.warnings.joined(separator: "\n"))
        XCTAssertTrue(trap.warnings.first?.contains("784") ?? false, trap.warnings.joined(separator: "\n"))
        XCTAssertEqual(try XCTUnwrap(WeightingReport.effectiveBeta(trap.model)), 784, accuracy: 1e-9)
        let elbo = try TestModels.compile(model("sum"))
        XCTAssertEqual(elbo.warnings, [])
        XCTAssertEqual(try XCTUnwrap(WeightingReport.effectiveBeta(elbo.model)), 1, accuracy: 1e-12)
    }
}
