import XCTest
@testable import VAECore

/// Issue 5: every likelihood's log-density against its closed form (in Double) at ordinary and edge
/// points, the special functions against independent values, and the data checks on crafted data.
final class LikelihoodTests: XCTestCase {
    /// Evaluates −log p(x|·) per feature for one row of features, the distribution parameters given.
    func negativeLogLikelihood(_ likelihood: Likelihood, x: [Float], _ parameters: [String: [Float]]) -> [Float] {
        var builder = GraphBuilder()
        let n = x.count
        let input = builder.add(.input("x"), name: "x", shape: .example(n))
        var ids: [String: ValueID] = [:]
        for name in parameters.keys.sorted() {
            let dims = parameters[name]!.count == 1 && name.hasPrefix("log_") ? [Int]() : [n]
            ids[name] = builder.add(.parameter(name), name: name, shape: name.hasPrefix("log_") ? Shape(batched: false, dims) : .example(n))
        }
        var losses = LossBuilder(builder: builder)
        let nll = losses.negativeLogLikelihood(input, likelihood, ids)
        losses.builder.setOutput("nll", nll)
        let e = Executable(graph: losses.builder.graph, outputs: ["nll"], batch: 1)
        e.setHyper("1/batch", 1)
        var storage = [x] + parameters.keys.sorted().map { parameters[$0]! }
        var pointers: [UnsafeMutablePointer<Float>] = []
        for i in storage.indices {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: storage[i].count)
            p.initialize(from: storage[i], count: storage[i].count)
            pointers.append(p)
        }
        defer { pointers.forEach { $0.deallocate() }; storage.removeAll() }
        if let id = e.uses(.input("x")) { e.bind(id, to: pointers[0]) }
        for (k, name) in parameters.keys.sorted().enumerated() {
            if let id = e.uses(.parameter(name)) { e.bind(id, to: pointers[k + 1]) }
        }
        e.run()
        return Array(UnsafeBufferPointer(start: e.value("nll")!, count: n))
    }

    func assertClose(_ a: [Float], _ b: [Double], relative: Double = 1e-5, absolute: Double = 1e-5, _ what: String) {
        XCTAssertEqual(a.count, b.count)
        for (u, v) in zip(a, b) {
            XCTAssertTrue(u.isFinite, "\(what): \(u) is not finite")
            XCTAssertEqual(Double(u), v, accuracy: max(absolute, relative * abs(v)), what)
        }
    }

    func softplus(_ l: Double) -> Double { max(l, 0) + Foundation.log1p(Foundation.exp(-abs(l))) }

    func testBernoulliAtEdges() {
        let x: [Float] = [0, 1, 0, 1, 0.5, 0.25]
        let l: [Float] = [30, 30, -30, -30, 0, 2]
        let expected = zip(x, l).map { softplus(Double($1)) - Double($0) * Double($1) }
        assertClose(negativeLogLikelihood(.bernoulli, x: x, ["logits": l]), expected, "bernoulli")
        // x = 1, l = 30: −log σ(30) ≈ 9.4e-14, not 0 by cancellation and never negative.
        XCTAssertGreaterThanOrEqual(negativeLogLikelihood(.bernoulli, x: [1], ["logits": [30]])[0], 0)
    }

    func testContinuousBernoulliMatchesClosedFormAndNormalises() {
        let x: [Float] = [0, 1, 0.5, 0.2, 0.9, 0.3, 0.7]
        let l: [Float] = [0, 0, 0, 1e-3, -1e-3, 30, -30]
        func logC(_ l: Double) -> Double {
            // log(2·artanh(1−2λ)/(1−2λ)) in terms of λ = σ(l), evaluated in Double away from λ = ½.
            if abs(l) < 1e-6 { return Foundation.log(2) }
            let lambda = 1 / (1 + Foundation.exp(-l))
            return Foundation.log(2 * Foundation.atanh(1 - 2 * lambda) / (1 - 2 * lambda))
        }
        let expected = zip(x, l).map { softplus(Double($1)) - Double($0) * Double($1) - logC(Double($1)) }
        assertClose(negativeLogLikelihood(.continuousBernoulli, x: x, ["logits": l]), expected, relative: 1e-4, absolute: 2e-4, "continuous bernoulli")
        // It is a density on [0, 1]: ∫ p(x) dx = 1 for several logits (midpoint rule).
        for logit: Float in [-4, -0.5, 0, 1e-3, 3] {
            let grid = (0..<2000).map { (Float($0) + 0.5) / 2000 }
            let nll = negativeLogLikelihood(.continuousBernoulli, x: grid, ["logits": Array(repeating: logit, count: grid.count)])
            let integral = nll.reduce(0.0) { $0 + Foundation.exp(-Double($1)) } / 2000
            XCTAssertEqual(integral, 1, accuracy: 1e-3, "∫p = 1 at l = \(logit)")
        }
    }

    func testCBLogNormalizerSeriesAgreesWithClosedFormNearZero() {
        for l in [1e-2, 2e-2, 5e-2, -3e-2, 0.1] {
            let closed = Foundation.log(l / Foundation.tanh(l / 2))
            XCTAssertEqual(SpecialFunctions.cbLogNormalizer(l), closed, accuracy: 1e-12)
            let slope = (SpecialFunctions.cbLogNormalizer(l + 1e-5) - SpecialFunctions.cbLogNormalizer(l - 1e-5)) / 2e-5
            XCTAssertEqual(SpecialFunctions.cbLogNormalizerSlope(l), slope, accuracy: 1e-7)
        }
        XCTAssertEqual(SpecialFunctions.cbLogNormalizer(0), Foundation.log(2))
        XCTAssertEqual(SpecialFunctions.cbLogNormalizerSlope(0), 0)
    }

    func testGaussianFixedSigmaIncludingTinySigma() {
        let x: [Float] = [0, 1, 0.5, 0.3]
        let m: [Float] = [0.1, 0.9, 0.5, 0.3001]
        for sigma in [1.0, 0.1, 1e-3] {
            let expected = zip(x, m).map { (xi, mi) -> Double in
                let r = Double(xi) - Double(mi)
                return r * r / (2 * sigma * sigma) + Foundation.log(sigma) + 0.5 * Foundation.log(2 * Double.pi)
            }
            assertClose(negativeLogLikelihood(.normal(sigma: .fixed(sigma)), x: x, ["mean": m]), expected, relative: 2e-4, absolute: 1e-4, "σ = \(sigma)")
        }
    }

    func testGaussianLearnedAndPredictedSigma() {
        let x: [Float] = [0, 1, 0.5]
        let m: [Float] = [0.2, 0.7, 0.5]
        let logSigma: Float = -1.3
        let expected = zip(x, m).map { (xi, mi) -> Double in
            let r = Double(xi) - Double(mi), s = Foundation.exp(Double(logSigma))
            return r * r / (2 * s * s) + Double(logSigma) + 0.5 * Foundation.log(2 * Double.pi)
        }
        assertClose(negativeLogLikelihood(.normal(sigma: .learned), x: x, ["mean": m, "log_sigma": [logSigma]]), expected, relative: 1e-5, "learned σ")
        let sigma: [Float] = [0.5, 2, 0.01]
        let predicted = zip(zip(x, m), sigma).map { (xm, s) -> Double in
            let r = Double(xm.0) - Double(xm.1)
            return r * r / (2 * Double(s) * Double(s)) + Foundation.log(Double(s)) + 0.5 * Foundation.log(2 * Double.pi)
        }
        assertClose(negativeLogLikelihood(.normal(sigma: .predicted), x: x, ["mean": m, "sigma": sigma]), predicted, relative: 1e-5, "predicted σ")
    }

    func testGaussianOptimalSigmaIsTheBatchRMSErrorSoftClipped() {
        let x: [Float] = [0, 1, 0.5, 0.2]
        let m: [Float] = [0.1, 0.8, 0.5, 0.5]
        let meanSquare = zip(x, m).map { pow(Double($0) - Double($1), 2) }.reduce(0, +) / 4
        let logSigma = -6 + softplus(0.5 * Foundation.log(meanSquare) + 6)
        let expected = zip(x, m).map { (xi, mi) -> Double in
            let r = Double(xi) - Double(mi)
            return r * r / 2 * Foundation.exp(-2 * logSigma) + logSigma + 0.5 * Foundation.log(2 * Double.pi)
        }
        assertClose(negativeLogLikelihood(.normal(sigma: .optimal), x: x, ["mean": m]), expected, relative: 1e-4, "optimal σ")
        // A perfect reconstruction: log σ is clipped softly at −6, the density stays finite.
        let perfect = negativeLogLikelihood(.normal(sigma: .optimal), x: x, ["mean": x])
        XCTAssertTrue(perfect.allSatisfy { $0.isFinite })
        XCTAssertEqual(Double(perfect[0]), -6 + softplus(-.infinity) + 0.5 * Foundation.log(2 * Double.pi), accuracy: 1e-4)
    }

    func testLaplace() {
        let x: [Float] = [0, 1, 0.5]
        let m: [Float] = [0.3, 0.2, 0.5]
        for s in [1.0, 0.05] {
            let expected = zip(x, m).map { abs(Double($0) - Double($1)) / s + Foundation.log(2 * s) }
            assertClose(negativeLogLikelihood(.laplace(scale: .fixed(s)), x: x, ["mean": m]), expected, relative: 1e-5, "laplace s = \(s)")
        }
    }

    func testBetaAgainstClosedFormIncludingTheEdges() {
        let x: [Float] = [0.3, 0.9, 0, 1, 0.5]
        let a: [Float] = [2, 0.5, 3, 1.5, 1]
        let b: [Float] = [5, 0.5, 1.2, 4, 1]
        var expected: [Double] = []
        for i in x.indices {
            let xi: Double = min(max(Double(x[i]), 1e-6), 1 - 1e-6)
            let ai = Double(a[i]), bi = Double(b[i])
            let normaliser: Double = Foundation.lgamma(ai + bi) - Foundation.lgamma(ai) - Foundation.lgamma(bi)
            let kernel: Double = (ai - 1) * Foundation.log(xi) + (bi - 1) * Foundation.log(1 - xi)
            expected.append(-(normaliser + kernel))
        }
        // Float's 1 − 1e-6 is 0.99999899…, so x = 1 is compared with a looser tolerance.
        assertClose(negativeLogLikelihood(.beta, x: x, ["alpha": a, "beta": b]), expected, relative: 2e-3, absolute: 2e-3, "beta")
        // Beta(1, 1) is uniform: −log p = 0.
        XCTAssertEqual(negativeLogLikelihood(.beta, x: [0.37], ["alpha": [1], "beta": [1]])[0], 0, accuracy: 1e-5)
    }

    func testDigammaAndTrigammaAgainstKnownValues() {
        let eulerGamma = 0.5772156649015329
        XCTAssertEqual(SpecialFunctions.digamma(1), -eulerGamma, accuracy: 1e-12)
        XCTAssertEqual(SpecialFunctions.digamma(0.5), -eulerGamma - 2 * Foundation.log(2), accuracy: 1e-12)
        XCTAssertEqual(SpecialFunctions.trigamma(1), Double.pi * Double.pi / 6, accuracy: 1e-12)
        XCTAssertEqual(SpecialFunctions.trigamma(0.5), Double.pi * Double.pi / 2, accuracy: 1e-11)
        for v in [0.05, 0.7, 3.3, 12.0, 150.0] {
            let dLgamma = (Foundation.lgamma(v + 1e-6) - Foundation.lgamma(v - 1e-6)) / 2e-6
            XCTAssertEqual(SpecialFunctions.digamma(v), dLgamma, accuracy: 1e-6 * max(1, abs(dLgamma)))
            let dDigamma = (SpecialFunctions.digamma(v + 1e-5) - SpecialFunctions.digamma(v - 1e-5)) / 2e-5
            XCTAssertEqual(SpecialFunctions.trigamma(v), dDigamma, accuracy: 1e-5 * max(1, dDigamma))
        }
    }

    func testDataChecksFireOnCraftedData() throws {
        let grey = Dataset(path: "/data/grey.idx", count: 2, features: 2, values: [0, 0.5, 1, 0.25])
        let note = try grey.check(against: .bernoulli)
        XCTAssertTrue(note?.contains("continuous_bernoulli") ?? false)
        XCTAssertNil(try Dataset(path: "/data/binary.idx", count: 2, features: 2, values: [0, 1, 1, 0]).check(against: .bernoulli))
        let outside = Dataset(path: "/data/raw.idx", count: 2, features: 2, values: [0, 255, 3, 0])
        for likelihood in [Likelihood.bernoulli, .continuousBernoulli, .beta] {
            XCTAssertThrowsError(try outside.check(against: likelihood)) { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("/data/raw.idx") && text.contains("255") && text.contains("[0, 1]"), text)
            }
        }
        XCTAssertNil(try outside.check(against: .normal(sigma: .fixed(1))))
    }
}

/// The train block's `binarize`: a threshold, or a Bernoulli draw that is reproducible per seed and
/// differs between epochs.
final class BinarizationTests: XCTestCase {
    func testThresholdAndDynamicDraws() throws {
        let grey = Dataset(path: "grey", count: 1, features: 4000, values: (0..<4000).map { Float($0 % 10) / 10 })
        let thresholded = grey.binarized(.threshold(0.5), draw: 0)
        XCTAssertEqual(thresholded.values, grey.values.map { $0 > 0.5 ? 1 : 0 })
        let a = grey.binarized(.dynamic, draw: 7), b = grey.binarized(.dynamic, draw: 7), c = grey.binarized(.dynamic, draw: 8)
        XCTAssertEqual(a.values, b.values, "the same seed draws the same pixels")
        XCTAssertNotEqual(a.values, c.values, "another epoch draws other pixels")
        XCTAssertTrue(a.values.allSatisfy { $0 == 0 || $0 == 1 })
        // A pixel of grey level p is 1 with probability p: the mean of the draw matches the grey mean.
        let mean = a.values.reduce(0, +) / Float(a.values.count)
        XCTAssertEqual(mean, grey.values.reduce(0, +) / Float(grey.values.count), accuracy: 0.03)
        XCTAssertTrue(zip(a.values, grey.values).allSatisfy { $1 > 0 || $0 == 0 }, "a black pixel stays black")

        let text = """
        model m
        input x: [4]
        latent z: [2] ~ normal(0, 1)
        encoder q(z | x) { z ~ normal(mean: linear(x, 2), logvar: linear(x, 2)) }
        decoder p(x | z) { x ~ bernoulli(logits: linear(z, 4)) }
        train { binarize: dynamic }
        """
        XCTAssertEqual(try Compiler.compile(source: SourceFile(path: "m.vae", text: text)).model.train.binarize, .dynamic)
        let bad = text.replacingOccurrences(of: "binarize: dynamic", with: "binarize: 1.5")
        XCTAssertThrowsError(try Compiler.compile(source: SourceFile(path: "m.vae", text: bad)))
    }
}
