import XCTest
@testable import VAECore

/// Issue 6: the evaluation metrics against closed forms. Probabilistic PCA (a linear-Gaussian VAE) has
/// an exact log-likelihood, log N(x; b, WWᵀ + σ²I), and an exact ELBO for a Gaussian q, so the
/// importance-weighted bound can be checked to lie between them and to close the gap as K grows
/// (`PPCA` below holds the closed forms).
final class EvaluationTests: XCTestCase {
    static let ppcaSource = """
    model ppca
    input  x: [3]
    latent z: [2] ~ normal(0, 1)

    encoder q(z | x) {
      z ~ normal(mean: linear(x, 2), logvar: linear(x, 2))
    }

    decoder p(x | z) {
      x ~ normal(mean: linear(z, 3), sigma: 0.5)
    }
    """

    func testImportanceWeightedBoundLiesBetweenELBOAndLogLikelihoodAndConverges() throws {
        let program = try TestModels.compile(Self.ppcaSource).program
        let ppca = PPCA()
        let e = ppca.encoder(meanScale: 0.6, varianceScale: 2.5)
        let evaluator = ModelEvaluator(program: program, parameters: ppca.parameters(for: program.model, encoder: e))
        let data = ppca.sample(1000, seed: 11)
        let rows = ppca.rows(data)
        let logLikelihood = rows.map(ppca.exactLogLikelihood).reduce(0, +) / Double(data.count)
        let elbo = rows.map { ppca.exactELBO($0, e) }.reduce(0, +) / Double(data.count)
        XCTAssertLessThan(elbo, logLikelihood - 0.3, "the test's encoder should leave a clear ELBO gap")

        var bounds: [Int: Double] = [:]
        for k in [1, 10, 100, 1000] {
            let result = try evaluator.evaluate(data, iwSamples: k, seed: 3)
            // The one-sample ELBO estimate agrees with the closed form (its standard error is ~0.07 nats
            // here: this encoder's variances are 2.5 times the posterior's).
            XCTAssertEqual(result.elbo, elbo, accuracy: 0.25, "ELBO estimate at K = \(k)")
            XCTAssertEqual(result.kl, rows.map { ppca.kl($0, e) }.reduce(0, +) / Double(data.count), accuracy: 1e-4, "the analytic KL")
            bounds[k] = try XCTUnwrap(result.iwBound)
            XCTAssertEqual(result.iwSamples, k)
        }
        let (l1, l10, l100, l1000) = (bounds[1]!, bounds[10]!, bounds[100]!, bounds[1000]!)
        print("PPCA: ELBO \(elbo), L_1 \(l1), L_10 \(l10), L_100 \(l100), L_1000 \(l1000), log p(x) \(logLikelihood)")
        // L_1 is an unbiased estimate of the ELBO; every L_K stays below log p(x).
        XCTAssertEqual(l1, elbo, accuracy: 0.25)
        for (k, bound) in bounds { XCTAssertLessThan(bound, logLikelihood + 0.01, "L_\(k) must not exceed log p(x)") }
        // The bound rises with K and closes most of the gap.
        XCTAssertGreaterThan(l10, elbo + 0.1)
        XCTAssertGreaterThan(l100, l10)
        XCTAssertGreaterThan(l1000, l100 - 0.005)
        XCTAssertLessThan(logLikelihood - l1000, 0.1 * (logLikelihood - elbo), "L_1000 = \(l1000), log p(x) = \(logLikelihood), ELBO = \(elbo)")
    }

    func testExactPosteriorMakesEveryBoundTight() throws {
        // With q(z|x) = p(z|x) every importance weight equals p(x), so L_K = ELBO = log p(x) for all K.
        // Only the marginal variances fit a diagonal q, so make W's columns orthogonal: Λ is then diagonal.
        let program = try TestModels.compile(Self.ppcaSource).program
        var test = PPCA()
        test.w = [[1.0, 0.0], [0.0, 0.8], [0.0, 0.6]]
        let e = test.encoder(meanScale: 1, varianceScale: 1)
        let evaluator = ModelEvaluator(program: program, parameters: test.parameters(for: program.model, encoder: e))
        let data = test.sample(20, seed: 5)
        let exact = test.rows(data).map(test.exactLogLikelihood).reduce(0, +) / Double(data.count)
        let result = try evaluator.evaluate(data, iwSamples: 10, seed: 1)
        XCTAssertEqual(try XCTUnwrap(result.iwBound), exact, accuracy: 1e-3)
    }

    func testActiveUnitsCountsAnIgnoredDimensionAsInactive() throws {
        let program = try TestModels.compile(Self.ppcaSource).program
        let ppca = PPCA()
        var e = ppca.encoder(meanScale: 1, varianceScale: 1)
        // Dimension 1's posterior mean no longer depends on x: weights and bias zero.
        e.weight[1] = [0, 0, 0]
        e.bias[1] = 0
        let evaluator = ModelEvaluator(program: program, parameters: ppca.parameters(for: program.model, encoder: e))
        let result = try evaluator.evaluate(ppca.sample(100, seed: 2), seed: 0)
        XCTAssertEqual(result.activeUnits, 1)
        XCTAssertEqual(result.posteriorMeanVariance[1], 0)
        XCTAssertGreaterThan(result.posteriorMeanVariance[0], ActiveUnits.threshold)
        XCTAssertNil(result.iwBound)
        // The JSON has exactly the documented keys and parses.
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.json.utf8)) as? [String: Any])
        XCTAssertEqual(Set(object.keys), ["elbo", "reconstruction", "kl", "kl_per_dim", "active_units", "iw_bound", "iw_samples", "examples"])
        XCTAssertEqual(object["active_units"] as? Int, 1)
        XCTAssertEqual(object["examples"] as? Int, 100)
        XCTAssertEqual((object["kl_per_dim"] as? [Double])?.count, 2)
        XCTAssertEqual(try XCTUnwrap(object["elbo"] as? Double), result.elbo, accuracy: 1e-9)
    }

    func testActiveUnitVariances() {
        // Dimension 0 varies (variance of 0, 1, 2, 3 is 5/3), dimension 1 is constant.
        let variances = ActiveUnits.variances(means: [0, 7, 1, 7, 2, 7, 3, 7], dims: 2)
        XCTAssertEqual(variances[0], 5.0 / 3, accuracy: 1e-12)
        XCTAssertEqual(variances[1], 0)
        XCTAssertEqual(ActiveUnits.count(variances), 1)
    }

    func testLogMeanExpMatchesDirectSumAndSurvivesLargeValues() {
        let values = [-3.0, 0.5, 2.0, -1.0, 1.5]
        var acc = LogMeanExp()
        for v in values { acc.add(v) }
        XCTAssertEqual(acc.value, Foundation.log(values.map { Foundation.exp($0) }.reduce(0, +) / 5), accuracy: 1e-12)
        var big = LogMeanExp()
        for v in [-1000.0, -1001.0, -999.0] { big.add(v) }   // exp underflows to 0 in a direct sum
        XCTAssertEqual(big.value, -1000 + Foundation.log((Foundation.exp(0) + Foundation.exp(-1) + Foundation.exp(1)) / 3), accuracy: 1e-9)
    }

    func testContinuousBernoulliMeanMatchesNumericalIntegral() {
        // E[x] = ∫ x λ^x (1−λ)^(1−x) dx / ∫ λ^x (1−λ)^(1−x) dx on [0, 1], by Simpson's rule.
        for l in [-8.0, -1.0, -0.05, -0.01, 0, 1e-4, 0.015, 0.3, 2.5, 20] {
            let n = 2000
            var numerator = 0.0, denominator = 0.0
            for i in 0...n {
                let x = Double(i) / Double(n)
                let weight = (i == 0 || i == n) ? 1.0 : (i % 2 == 1 ? 4.0 : 2.0)
                // λ^x (1−λ)^(1−x) ∝ exp(l·x) (the (1−λ) factor cancels in the ratio).
                let density = Foundation.exp(l * x - max(l, 0))
                numerator += weight * x * density
                denominator += weight * density
            }
            XCTAssertEqual(Likelihood.continuousBernoulliMean(logit: l), numerator / denominator, accuracy: 1e-9, "l = \(l)")
        }
        XCTAssertEqual(Likelihood.continuousBernoulliMean(logit: 0), 0.5)
    }

    /// The decoder cut out of each sample model computes exactly what the whole graph does: at
    /// z = μ + σ·ε from the encoder, its −log p(x|z) summed over the batch is the graph's reconstruction,
    /// and its means are the likelihood's mean of the graph's decoder output.
    func testDecoderGraphAgreesWithTheFullGraphForEverySampleModel() throws {
        let models = try TestPaths.files(in: TestPaths.samples, withExtension: "vae")
        XCTAssertGreaterThan(models.count, 5)
        var likelihoods = Set<String>()
        for url in models {
            let program: CompiledProgram
            do { program = try Compiler.compile(path: url.path).program } catch { continue }   // e.g. deliberately broken samples
            likelihoods.insert(program.model.likelihood.summary)
            try assertDecoderAgrees(program, url.lastPathComponent)
        }
        XCTAssertGreaterThanOrEqual(likelihoods.count, 5, "the samples should cover the likelihoods: \(likelihoods)")
    }

    func testDecoderGraphWithASampledKLAndASigmaPosterior() throws {
        // The sampled KL reads ε and z besides the decoder; a σ-parameterised posterior builds z from σ.
        try assertDecoderAgrees(try TestModels.compile(TestModels.mlp(inputs: 6, hidden: 5, latents: 3, objective: "kl: sampled")).program, "sampled KL")
        let sigmaPosterior = TestModels.mlp(inputs: 6, hidden: 5, latents: 3)
            .replacingOccurrences(of: "logvar: linear(h, 3)", with: "sigma: softplus(linear(h, 3)) + 0.01")
        XCTAssertTrue(sigmaPosterior.contains("sigma: softplus"))
        try assertDecoderAgrees(try TestModels.compile(sigmaPosterior).program, "σ posterior")
    }

    func assertDecoderAgrees(_ program: CompiledProgram, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let model = program.model
        let batch = 2
        let data = EvaluationPoint.syntheticDataset(for: model, rows: batch, seed: 4)
        let point = try EvaluationPoint.load(model: model, checkpoint: nil, data: data, rows: 0..<batch, noise: .seeded(9))
        let full = try GraphEvaluator(graph: program.graph, point: point,
                                      outputs: [OutputName.reconstruction, OutputName.posteriorMean,
                                                OutputName.posteriorLogVariance, OutputName.decoderOutput])
        full.run()
        let mu = full.values(OutputName.posteriorMean), logVariance = full.values(OutputName.posteriorLogVariance)
        let z = (0..<mu.count).map { mu[$0] + Float(Foundation.exp(0.5 * Double(logVariance[$0]))) * point.noise[$0] }
        let decoder = try Decoder(model: model, parameters: point.parameters)
        var nll = [Double](repeating: 0, count: batch)
        try point.input.withUnsafeBufferPointer { x in
            try z.withUnsafeBufferPointer { zp in
                try nll.withUnsafeMutableBufferPointer { try decoder.negativeLogLikelihood(x: x.baseAddress!, z: zp.baseAddress!, rows: batch, into: $0.baseAddress!) }
            }
        }
        let expected = Double(full.scalar(OutputName.reconstruction))
        XCTAssertEqual(nll.reduce(0, +), expected, accuracy: 1e-4 * max(1, abs(expected)), what, file: file, line: line)
        let means = try decoder.means(z)
        let graphMeans = full.values(OutputName.decoderOutput).map { model.likelihood.mean(ofDecoderOutput: $0) }
        XCTAssertEqual(means.count, graphMeans.count, what, file: file, line: line)
        let worst = zip(means, graphMeans).map { abs($0 - $1) }.max() ?? .nan
        XCTAssertLessThan(worst, 1e-4, what, file: file, line: line)
    }
}

/// Probabilistic PCA with 3 features and 2 latent dimensions, and linear Gaussian encoders for it.
struct PPCA {
    /// The generative model: x = W z + b + 0.5·noise, with W [3, 2] and b [3].
    var w: [[Double]] = [[1.2, -0.4], [0.3, 0.9], [-0.7, 0.5]]
    var b: [Double] = [0.2, -0.1, 0.4]
    let sigma = 0.5   // as in the model source

    /// The exact posterior: precision Λ = I + WᵀW/σ², mean Λ⁻¹Wᵀ(x − b)/σ², so the encoder's mean is
    /// linear in x with weight A = Λ⁻¹Wᵀ/σ² and bias −A·b.
    func exactPosterior() -> (a: [[Double]], covariance: [[Double]]) {
        var precision = [[1.0, 0], [0, 1.0]]
        for i in 0..<2 { for j in 0..<2 { for d in 0..<3 { precision[i][j] += w[d][i] * w[d][j] / (sigma * sigma) } } }
        let det = precision[0][0] * precision[1][1] - precision[0][1] * precision[1][0]
        let covariance = [[precision[1][1] / det, -precision[0][1] / det], [-precision[1][0] / det, precision[0][0] / det]]
        var a = [[Double]](repeating: [0, 0, 0], count: 2)
        for i in 0..<2 { for d in 0..<3 { for k in 0..<2 { a[i][d] += covariance[i][k] * w[d][k] / (sigma * sigma) } } }
        return (a, covariance)
    }

    /// An encoder that is deliberately not the exact posterior (mean shrunk by `meanScale`, variances
    /// `varianceScale` × the exact marginals), so the ELBO sits clearly below log p(x).
    struct Encoder { var weight: [[Double]]; var bias: [Double]; var logVariance: [Double] }

    func encoder(meanScale: Double, varianceScale: Double) -> Encoder {
        let (a, covariance) = exactPosterior()
        let weight = a.map { $0.map { $0 * meanScale } }
        let bias = (0..<2).map { i in -(0..<3).reduce(0.0) { $0 + weight[i][$1] * b[$1] } }
        return Encoder(weight: weight, bias: bias, logVariance: (0..<2).map { Foundation.log(covariance[$0][$0] * varianceScale) })
    }

    func parameters(for model: ModelSpec, encoder e: Encoder) -> ParameterStore {
        let store = ParameterStore(specs: model.parameters)
        func set(_ name: String, _ values: [Double]) {
            let index = store.index(of: name)!
            store.set(index, values.map { Float($0) })
        }
        set("encoder.z.mean.weight", e.weight.flatMap { $0 })
        set("encoder.z.mean.bias", e.bias)
        set("encoder.z.logvar.weight", [Double](repeating: 0, count: 6))
        set("encoder.z.logvar.bias", e.logVariance)
        set("decoder.x.mean.weight", w.flatMap { $0 })
        set("decoder.x.mean.bias", b)
        return store
    }

    /// Examples drawn from the generative model itself.
    func sample(_ count: Int, seed: UInt64) -> Dataset {
        var random = RandomSource(seed: seed)
        var values: [Float] = []
        for _ in 0..<count {
            let z = random.normals(2), noise = random.normals(3)
            for d in 0..<3 {
                values.append(Float(w[d][0] * Double(z[0]) + w[d][1] * Double(z[1]) + b[d] + sigma * Double(noise[d])))
            }
        }
        return Dataset(path: "<ppca>", count: count, features: 3, values: values)
    }

    /// log N(x; b, WWᵀ + σ²I) by Cholesky, in Double.
    func exactLogLikelihood(_ x: [Double]) -> Double {
        var c = [[Double]](repeating: [0, 0, 0], count: 3)
        for i in 0..<3 { for j in 0..<3 { c[i][j] = w[i][0] * w[j][0] + w[i][1] * w[j][1] + (i == j ? sigma * sigma : 0) } }
        var l = [[Double]](repeating: [0, 0, 0], count: 3)
        for i in 0..<3 {
            for j in 0...i {
                var s = c[i][j]
                for k in 0..<j { s -= l[i][k] * l[j][k] }
                l[i][j] = i == j ? s.squareRoot() : s / l[j][j]
            }
        }
        var y = [0.0, 0, 0]          // L y = x − b
        for i in 0..<3 {
            var s = x[i] - b[i]
            for k in 0..<i { s -= l[i][k] * y[k] }
            y[i] = s / l[i][i]
        }
        let logDet = 2 * (0..<3).reduce(0.0) { $0 + Foundation.log(l[$1][$1]) }
        return -0.5 * (y.reduce(0) { $0 + $1 * $1 } + logDet + 3 * Foundation.log(2 * Double.pi))
    }

    /// The ELBO of the linear encoder in closed form: E_q[log p(x|z)] − KL(q ‖ N(0, I)).
    func exactELBO(_ x: [Double], _ e: Encoder) -> Double {
        let mu = mean(x, e)
        let variance = e.logVariance.map { Foundation.exp($0) }
        var expectedSquare = 0.0
        for d in 0..<3 {
            let residual = x[d] - b[d] - w[d][0] * mu[0] - w[d][1] * mu[1]
            expectedSquare += residual * residual + w[d][0] * w[d][0] * variance[0] + w[d][1] * w[d][1] * variance[1]
        }
        let logLikelihood = -expectedSquare / (2 * sigma * sigma) - 3 * Foundation.log(sigma) - 1.5 * Foundation.log(2 * Double.pi)
        return logLikelihood - kl(x, e)
    }

    /// The encoder's posterior mean at x.
    func mean(_ x: [Double], _ e: Encoder) -> [Double] {
        (0..<2).map { i in e.bias[i] + (0..<3).reduce(0.0) { $0 + e.weight[i][$1] * x[$1] } }
    }

    /// KL(q(z|x) ‖ N(0, I)) = Σ_j ½(σ_j² + μ_j² − 1 − log σ_j²).
    func kl(_ x: [Double], _ e: Encoder) -> Double {
        let mu = mean(x, e)
        var sum = 0.0
        for j in 0..<2 {
            let logVariance = e.logVariance[j]
            sum += 0.5 * (Foundation.exp(logVariance) + mu[j] * mu[j] - 1 - logVariance)
        }
        return sum
    }

    func rows(_ data: Dataset) -> [[Double]] {
        (0..<data.count).map { r in (0..<3).map { Double(data.values[r * 3 + $0]) } }
    }

}
