import Foundation
import XCTest
@testable import VAECore

/// Issue 10: `vaec export` to PyTorch and JAX and `vaec import`. The central test runs every sample (and
/// a few models that use what the samples do not) through both exported modules and compares loss and
/// gradients with vaec's on the same checkpoint, batch and noise (scripts/export/equivalence.py does the
/// Python side); it needs a Python with PyTorch or JAX and is skipped, saying so, without one.
final class ExportTests: XCTestCase {

    // MARK: - Models beyond the samples

    /// Models that exercise what the samples do not: nested and named layers, locals named like Python
    /// keywords, every elementwise function, σ posteriors, predicted scales, log of sigmoid/exp (which vaec
    /// rewrites), sampled KL against a shifted, wider prior, mean reductions, batch: sum, GECO with a
    /// mean reconstruction, free bits and capacity with kl_reduction: mean, learned per-feature scales.
    static func extraModels(data: String) -> [(name: String, text: String)] {
        let train = """
        train {
          data: idx("\(data)", scale: 1/255)
          batch: 16
          epochs: 2
          seed: 3
        }
        """
        return [
            ("odd_names", """
            # Names a Python module cannot use as they are, and every function.
            model odd_names

            input  pixels: [784]            # not called x
            latent code: [8] ~ normal(0.5, 2)

            encoder q(code | pixels) {
              lambda = tanh(linear(relu(linear(pixels, 48)), 24))   # two layers in one statement
              self = sqrt(abs(lambda) + 1) * 0.5 - square(lambda) / 3
              code ~ normal(mean: linear(self, 8, name: "fc_mu"), sigma: exp(linear(lambda, 8)))
            }

            decoder p(pixels | code) {
              g = softplus(linear(code, 32)) - -relu(linear(code, 32))
              pixels ~ normal(mean: sigmoid(linear(g, 784)), sigma: sigmoid(linear(g, 784)) + 0.05)
            }

            objective {
              reconstruction: mean
              kl: sampled
              kl_reduction: mean
              batch: sum
              beta: 0.5   # a constant β
            }

            \(train)
            """),
            ("stabilised", """
            model stabilised
            input  x: [784]
            latent z: [4] ~ normal(0, 1)

            encoder q(z | x) {
              h = relu(linear(x, 32))
              s = sigmoid(linear(h, 4))
              # vaec rewrites log(sigmoid e) as −softplus(−e) and log(1 − sigmoid e) as −softplus(e)
              z ~ normal(mean: linear(h, 4), logvar: log(s) + log(1 - sigmoid(linear(h, 4))))
            }

            decoder p(x | z) {
              h = tanh(linear(z, 32))
              x ~ laplace(mean: sigmoid(linear(h, 784)), scale: learned_per_feature)
            }

            objective {
              reconstruction: mean
              beta: geco(kappa: 0.5, lambda: 2)
            }

            \(train)
            """),
            ("per_feature", """
            model per_feature
            input  x: [784]
            latent z: [6] ~ normal(0, 1)

            encoder q(z | x) {
              h = relu(linear(x, 32, name: "enc.fc"))
              z ~ normal(mean: linear(h, 6), logvar: linear(h, 6))
            }

            decoder p(x | z) {
              h = relu(linear(z, 32))
              x ~ normal(mean: linear(h, 784), sigma: learned_per_feature)
            }

            objective {
              kl_reduction: mean
              beta: free_bits(lambda: 0.01, beta: 2)
            }

            \(train)
            """),
            ("capacity_mean", """
            model capacity_mean
            input  x: [784]
            latent z: [5] ~ normal(0, 1)

            encoder q(z | x) {
              h = relu(linear(x, 32))
              z ~ normal(mean: linear(h, 5), sigma: softplus(linear(h, 5)))
            }

            decoder p(x | z) {
              h = relu(linear(z, 32))
              x ~ continuous_bernoulli(logits: linear(h, 784) * 3)
            }

            objective {
              kl_reduction: mean
              beta: capacity(gamma: 10, max: 5, epochs: 1)
            }

            \(train)
            """),
        ]
    }

    /// Convolutions beyond samples/keras_conv.vae: an image of several channels read from a [N, H, W, C]
    /// file (TensorFlow's order, moved to [C, H, W] by vaec and by the module), valid padding, kernels,
    /// strides and same-padding that differ by axis (F.pad's and the crop's order of axes), nested and
    /// named layers, reshape to several channels, and a learned per-pixel σ (stored [H, W, C] by vaec).
    static func convolutionModel(data: String) -> (name: String, text: String) {
        ("conv_channels", """
        model conv_channels

        input  x: [4, 14, 14]
        latent z: [3] ~ normal(0, 1)

        encoder q(z | x) {
          h = relu(conv2d(x, 5, kernel: [3, 2], stride: [1, 2]))                            # valid: [5, 12, 7]
          g = tanh(conv2d(h, 3, kernel: 3, stride: [2, 1], padding: same, name: "squeeze"))  # [3, 6, 7]: zeros 0/1 rows, 1/1 columns
          z ~ normal(mean: linear(flatten(g), 3), logvar: linear(flatten(h), 3))
        }

        decoder p(x | z) {
          h = reshape(linear(z, 2 * 7 * 14), [2, 7, 14])
          u = softplus(conv_transpose2d(h, 3, kernel: 3, stride: [2, 1], padding: same))       # [3, 14, 14]
          v = conv_transpose2d(reshape(linear(z, 84), [2, 6, 7]), 4, kernel: [4, 2], stride: 2)  # valid: [4, 14, 14]
          x ~ normal(mean: conv_transpose2d(u, 4, kernel: 1) + v, sigma: learned_per_feature)
        }

        train {
          data: npy("\(data)")
          batch: 16
          epochs: 2
          seed: 3
        }
        """)
    }

    /// 64 MNIST digits as images [14, 14, 4] (each digit's 784 values reread as 4 channels), in a .npy file
    /// laid out [N, H, W, C].
    static func writeChannelsData(in folder: URL) throws -> String {
        let mnist = try Data(contentsOf: TestPaths.samples.appendingPathComponent("data/mnist5k-train-images-idx3-ubyte"))
        let values = mnist.dropFirst(16).prefix(64 * 784).map { Float($0) / 255 }
        let path = folder.appendingPathComponent("channels.npy").path
        try NPYFile.write(float32: values, dims: [64, 14, 14, 4], to: path)
        return path
    }

    // MARK: - Equivalence with vaec (needs PyTorch or JAX)

    /// Loss and gradients of both exported modules equal vaec's within 1e-5 (relative; per tensor
    /// ‖g_vaec − g_py‖/‖g_py‖) for every sample and the extra models, with ε = 0 and a fixed ε, at a
    /// checkpoint recorded at step 20 (so scheduled β's are mid-ramp). The hypers the exported
    /// BetaController gives must be the ones vaec used, state_dict keys must be vaec's names (the
    /// strict load_state_dict), and save_vaec_checkpoint must rewrite vaec's checkpoint byte for byte.
    func testExportedModulesComputeVaecsLossAndGradients() throws {
        let peers = try PythonPeers.require()
        let folder = try TestPaths.temporaryFolder(for: self)
        let dataPath = TestPaths.samples.appendingPathComponent("data/mnist5k-train-images-idx3-ubyte").path
        var models = try TestPaths.files(in: TestPaths.samples, withExtension: "vae").map { $0.path }
        for (name, text) in Self.extraModels(data: dataPath) + [Self.convolutionModel(data: try Self.writeChannelsData(in: folder))] {
            let url = folder.appendingPathComponent("\(name).vae")
            try text.write(to: url, atomically: true, encoding: .utf8)
            models.append(url.path)
        }
        // The driver checks each case as soon as its line arrives, so Python runs while vaec computes the next.
        let resultsPath = folder.appendingPathComponent("results.json")
        var arguments = [Self.driver.path, "--manifest", "-", "--json", resultsPath.path]
        if let cache = Self.jaxCache { arguments += ["--jax-cache", cache] }
        let driver = try PythonPeers.start(peers.python, arguments)
        var cases = 0
        func send(_ entry: [String: Any]) throws {
            driver.write(try JSONSerialization.data(withJSONObject: entry) + Data("\n".utf8))
            cases += 1
        }

        var datasets: [String: Dataset] = [:]
        var checkpoints: [String: String] = [:]
        for (modelIndex, path) in models.enumerated() {
            let result = try Compiler.compile(path: path)
            let model = result.model
            let name = model.name
            let directory = (path as NSString).deletingLastPathComponent
            // A convolutional model (rank-4 weights) costs the debug build's kernels seconds per example:
            // four rows (every pixel and channel of them) check it as well.
            let rows = model.parameters.contains { $0.dims.count == 4 } ? 0..<4 : 0..<16
            for target in peers.targets {
                let text = try Exporter.module(result, target: target, modelDirectory: directory)
                try text.write(toFile: folder.appendingPathComponent("\(name)_\(target.rawValue).py").path, atomically: true, encoding: .utf8)
            }
            // vaec's initialisation, with learned log-scales moved off 0 so that σ ≠ 1 is tested. Models with the
            // same parameters share one checkpoint (vaec loads any checkpoint with the right names and shapes;
            // the debug build takes a second or two to write one).
            let signature = model.parameters.map { "\($0.name)\($0.dims)\($0.initialization)" }.joined(separator: ";")
            let ownsCheckpoint = checkpoints[signature] == nil
            if ownsCheckpoint {
                let parameters = ParameterStore(specs: model.parameters)
                var random = RandomSource(seed: 11)
                parameters.initialize(random: &random)
                for (index, spec) in model.parameters.enumerated() where spec.initialization == .constant(0) {
                    parameters.set(index, (0..<spec.count).map { _ in -random.nextUniform() })
                }
                let path = folder.appendingPathComponent("\(name).safetensors").path
                try Checkpoint.save(parameters, model: model, epoch: 0, step: 20, to: path)
                checkpoints[signature] = path
            }
            let checkpoint = checkpoints[signature]!

            let source = model.train.data!
            let key = "\(source.path)|\(source.scale)|\(directory)"
            if datasets[key] == nil {
                datasets[key] = try EvaluationPoint.dataset(for: model, path: nil, scale: nil, modelDirectory: directory)
            }
            var epsilon = [Float](repeating: 0, count: rows.count * model.latent.featureCount)
            var noiseRandom = RandomSource(seed: 7)
            epsilon.withUnsafeMutableBufferPointer { noiseRandom.fillNormal($0.baseAddress!, count: $0.count) }
            let noisePath = folder.appendingPathComponent("\(name)_eps.npy").path
            try NPYFile.write(float32: epsilon, dims: [rows.count, model.latent.featureCount], to: noisePath)

            // vaec's side through its own checkpoint reader, once; the ε = ε case reuses its parameters.
            let zero = try EvaluationPoint.load(model: model, checkpoint: checkpoint, data: datasets[key]!, rows: rows, noise: .zero)
            let fixed = EvaluationPoint(model: model, parameters: zero.parameters, rows: rows, input: zero.input,
                                        noise: .values(epsilon, source: noisePath), hypers: zero.hypers, provenance: zero.provenance)
            for (label, point) in [("zero", zero), ("fixed", fixed)] {
                let report = try GradientReport.evaluate(graph: result.program.graph, point: point)
                let gradients = folder.appendingPathComponent("\(name)_\(label)_grad.safetensors").path
                // GradientReport.write once (it is what `vaec grad --out` writes); a bulk copy of the same
                // file elsewhere, since the debug build's element-by-element encoder takes a second a file.
                if modelIndex == 0 { try report.write(to: gradients) } else { try Self.writeQuickly(report, to: gradients) }
                for target in peers.targets {
                    var entry: [String: Any] = [
                        "model": name, "target": target.rawValue,
                        "module": folder.appendingPathComponent("\(name)_\(target.rawValue).py").path,
                        "checkpoint": checkpoint, "rows": [rows.lowerBound, rows.upperBound],
                        "noise": label == "zero" ? "zero" : noisePath, "gradients": gradients,
                    ]
                    if label == "zero" && ownsCheckpoint { entry["resave"] = folder.appendingPathComponent("\(name)_\(target.rawValue)_resaved.safetensors").path }
                    try send(entry)
                }
            }
        }
        let run = driver.finish(timeout: 600)
        print(run.stdout)
        let results = (try? JSONSerialization.jsonObject(with: Data(contentsOf: resultsPath))) as? [[String: Any]] ?? []
        XCTAssertEqual(results.count, cases, "the driver reported \(results.count) of \(cases) cases:\n\(run.stdout)\n\(run.stderr)")
        for r in results {
            let label = "\(r["model"] ?? "?") \(r["target"] ?? "?") noise \(r["noise"] ?? "?")"
            if let error = r["error"] { XCTFail("\(label): \(error)"); continue }
            let lossRelative = r["loss_relative"] as? Double ?? .infinity
            let gradientRelative = r["max_gradient_relative"] as? Double ?? .infinity
            XCTAssertLessThanOrEqual(lossRelative, 1e-5, "\(label): loss vaec \(r["loss_vaec"] ?? "?") vs \(r["loss_python"] ?? "?")")
            XCTAssertLessThanOrEqual(gradientRelative, 1e-5, "\(label): gradients \(r["gradients"] ?? "?")")
            XCTAssertEqual(r["hypers_match"] as? Bool, true, "\(label): hypers \(r["hypers"] ?? "?") vs vaec's \(r["vaec_hypers"] ?? "?")")
            XCTAssertEqual(r["passed"] as? Bool, true, "\(label): \(r)")
            if r["resave_identical"] != nil {
                XCTAssertEqual(r["resave_identical"] as? Bool, true, "\(label): save_vaec_checkpoint did not reproduce vaec's checkpoint bytes")
            }
        }
        XCTAssertEqual(run.status, 0, run.stderr)
    }

    /// Where the driver keeps JAX's compiled programs between test runs: beside the test bundle, in the
    /// build folder (`swift package clean` removes it).
    static let jaxCache: String? = VAECProcess.binary.map { $0.deletingLastPathComponent().appendingPathComponent("export-jax-cache").path }

    /// The gradient file `GradientReport.write` writes (same names, shapes and metadata the driver reads),
    /// with the data copied in bulk.
    static func writeQuickly(_ report: GradientReport, to path: String) throws {
        let names = report.gradients.map(\.parameter.name).sorted()
        let byName = Dictionary(uniqueKeysWithValues: report.gradients.map { ($0.parameter.name, $0) })
        var metadata = ["format": "vaec-gradients", "model": report.point.model.name, "loss": "\(report.loss)",
                        "hypers": report.hypers.map { "\($0.name)=\($0.value)" }.joined(separator: ",")]
        if let r = report.reconstructionPerExample, let k = report.klPerExample { (metadata["reconstruction"], metadata["kl"]) = ("\(r)", "\(k)") }
        var header: [String: Any] = ["__metadata__": metadata]
        var offset = 0
        var data = Data()
        for name in names {
            let g = byName[name]!
            header[name] = ["dtype": "F32", "shape": g.parameter.dims, "data_offsets": [offset, offset + 4 * g.values.count]]
            g.values.withUnsafeBytes { data.append(contentsOf: $0) }   // x86-64 is little-endian, as safetensors
            offset += 4 * g.values.count
        }
        var json = try JSONSerialization.data(withJSONObject: header)
        while json.count % 8 != 0 { json.append(0x20) }
        var count = UInt64(json.count).littleEndian
        var file = Data(bytes: &count, count: 8)
        file.append(json)
        file.append(data)
        try file.write(to: URL(fileURLWithPath: path))
    }

    static let driver = TestPaths.packageRoot.appendingPathComponent("scripts/export/equivalence.py")

    /// The equivalence check fails when the module and vaec disagree: a module whose KL is off by 1e-4
    /// (relative) must be reported, so the passing test above means something.
    func testTheEquivalenceCheckCatchesASmallDifference() throws {
        let peers = try PythonPeers.require()
        let folder = try TestPaths.temporaryFolder(for: self)
        let dataPath = TestPaths.samples.appendingPathComponent("data/mnist5k-train-images-idx3-ubyte").path
        let text = TestModels.mlp(inputs: 784, hidden: 16, latents: 3, train: "data: idx(\"\(dataPath)\", scale: 1/255)\nbatch: 8")
        let modelPath = folder.appendingPathComponent("tiny.vae").path
        try text.write(toFile: modelPath, atomically: true, encoding: .utf8)
        let result = try Compiler.compile(path: modelPath)
        let target = peers.targets[0]
        var module = try Exporter.module(result, target: target)
        // Tamper with the KL: 0.5 → 0.50005 (1e-4 relative).
        XCTAssertTrue(module.contains("return 0.5 * ((spread - 1.0) - logvar)"))
        module = module.replacingOccurrences(of: "return 0.5 * ((spread - 1.0) - logvar)", with: "return 0.50005 * ((spread - 1.0) - logvar)")
        let modulePath = folder.appendingPathComponent("tiny_\(target.rawValue).py").path
        try module.write(toFile: modulePath, atomically: true, encoding: .utf8)
        let parameters = ParameterStore(specs: result.model.parameters)
        var random = RandomSource(seed: 1)
        parameters.initialize(random: &random)
        let checkpoint = folder.appendingPathComponent("tiny.safetensors").path
        try Checkpoint.save(parameters, model: result.model, epoch: 0, step: 0, to: checkpoint)
        let data = try EvaluationPoint.dataset(for: result.model, path: nil, scale: nil, modelDirectory: folder.path)
        let point = try EvaluationPoint.load(model: result.model, checkpoint: checkpoint, data: data, rows: 0..<8, noise: .zero)
        let gradients = folder.appendingPathComponent("g.safetensors").path
        try GradientReport.evaluate(graph: result.program.graph, point: point).write(to: gradients)
        let manifest = folder.appendingPathComponent("cases.json")
        try JSONSerialization.data(withJSONObject: [["model": "tiny", "target": target.rawValue, "module": modulePath,
                                                     "checkpoint": checkpoint, "rows": [0, 8], "noise": "zero",
                                                     "gradients": gradients]]).write(to: manifest)
        let run = try PythonPeers.run(peers.python, [Self.driver.path, "--manifest", manifest.path], timeout: 300)
        XCTAssertEqual(run.status, 1, "the tampered module passed:\n\(run.stdout)\(run.stderr)")
        XCTAssertTrue(run.stdout.contains("FAIL"), run.stdout)
    }

    /// The module draws vaec's random stream: the same uniforms, normals, permutations, initial
    /// parameters and binarised data as RandomSource, ParameterStore.initialize and Dataset.binarized.
    func testTheModuleDrawsVaecsRandomStream() throws {
        let peers = try PythonPeers.require()
        let folder = try TestPaths.temporaryFolder(for: self)
        let result = try TestModels.compile(TestModels.mlp(inputs: 5, hidden: 4, latents: 3), path: folder.appendingPathComponent("tiny.vae").path)
        let module = folder.appendingPathComponent("tiny_module.py")
        try Exporter.module(result, target: peers.targets[0]).write(to: module, atomically: true, encoding: .utf8)
        let script = """
        import json, sys
        sys.path.insert(0, \(Python.string(folder.path)))
        import tiny_module as m
        r = m.VaecRandom(12345)
        out = {"uniform": r.uniform(5).tolist(), "normal": r.normal(7).tolist(), "permutation": r.permutation(10).tolist()}
        out["parameters"] = {k: v.ravel().tolist() for k, v in m.vaec_initial_parameters(m.VaecRandom(3)).items()}
        grey = m.np.linspace(0, 1, 24, dtype=m.np.float32).reshape(4, 6)
        m.TRAIN["binarize"] = "dynamic"
        out["dynamic"] = [m.binarized(grey, 9, epoch).ravel().tolist() for epoch in (-1, 0, 2)]
        m.TRAIN["binarize"] = 0.5
        out["threshold"] = m.binarized(grey, 9, 0).ravel().tolist()
        print(json.dumps(out))
        """
        let run = try PythonPeers.run(peers.python, ["-c", script], timeout: 120)
        XCTAssertEqual(run.status, 0, run.stderr)
        let drawn = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        var random = RandomSource(seed: 12345)
        let uniforms = (0..<5).map { _ in random.nextUniform() }
        var normals = [Float](repeating: 0, count: 7)
        normals.withUnsafeMutableBufferPointer { random.fillNormal($0.baseAddress!, count: 7) }
        let permutation = random.permutation(10)
        XCTAssertEqual((drawn["uniform"] as? [Double])?.map { Float($0) }, uniforms)
        XCTAssertEqual((drawn["normal"] as? [Double])?.map { Float($0) }, normals)
        XCTAssertEqual(drawn["permutation"] as? [Int], permutation)
        let store = ParameterStore(specs: result.model.parameters)
        var initial = RandomSource(seed: 3)
        store.initialize(random: &initial)
        let grey = Dataset(path: "grey", count: 4, features: 6, values: (0..<24).map { Float($0) / 23 })
        let dynamic = [-1, 0, 2].map { grey.binarized(.dynamic, draw: Trainer.drawSeed(9, epoch: $0)).values }
        XCTAssertEqual((drawn["dynamic"] as? [[Double]])?.map { $0.map { Float($0) } }, dynamic, "dynamic binarisation")
        XCTAssertEqual((drawn["threshold"] as? [Double])?.map { Float($0) }, grey.binarized(.threshold(0.5), draw: 0).values)
        let parameters = try XCTUnwrap(drawn["parameters"] as? [String: [Double]])
        for (index, spec) in result.model.parameters.enumerated() {
            XCTAssertEqual(parameters[spec.name]?.map { Float($0) }, store.values(index), spec.name)
        }
    }

    /// The exported training loop is vaec's run: from the same stream, with GECO's λ updated after every
    /// step, an epoch (40 steps) of a small model gives vaec's train and test figures and β to float32 rounding.
    func testTheExportedTrainingFollowsVaecsRun() throws {
        let peers = try PythonPeers.require()
        let folder = try TestPaths.temporaryFolder(for: self)
        let data = TestPaths.samples.appendingPathComponent("data")
        let text = TestModels.mlp(inputs: 784, hidden: 16, latents: 3, objective: "beta: geco(kappa: 400, alpha: 0.0005)",
                                  train: """
                                  data: idx("\(data.appendingPathComponent("mnist5k-train-images-idx3-ubyte").path)", scale: 1/255)
                                  test: idx("\(data.appendingPathComponent("mnist5k-test-images-idx3-ubyte").path)", scale: 1/255)
                                  batch: 100
                                  epochs: 1
                                  seed: 5
                                  """)
        let modelPath = folder.appendingPathComponent("geco_tiny.vae").path
        try text.write(toFile: modelPath, atomically: true, encoding: .utf8)
        let result = try Compiler.compile(path: modelPath)
        let model = result.model
        // Both targets in one Python process (one interpreter start).
        var script = "import sys\nsys.path.insert(0, \(Python.string(folder.path)))\n"
        for target in peers.targets {
            try Exporter.module(result, target: target).write(to: folder.appendingPathComponent("geco_tiny_\(target.rawValue).py"),
                                                            atomically: true, encoding: .utf8)
            script += "import geco_tiny_\(target.rawValue)\ngeco_tiny_\(target.rawValue).train(log=lambda line: print(\(Python.string(target.rawValue + " ")) + line))\n"
        }
        // Python trains while vaec does.
        let python = try PythonPeers.start(peers.python, ["-c", script])
        let trainer = try Trainer(program: result.program,
                                  train: try Dataset.load(model.train.data!, relativeTo: folder.path, input: model.input),
                                  test: try Dataset.load(model.train.test!, relativeTo: folder.path, input: model.input))
        let history = try trainer.run()
        XCTAssertEqual(history.count, 1)
        let lambda = try XCTUnwrap(trainer.controller.lambda)
        XCTAssertTrue(lambda > 10 && lambda < 1e5, "GECO's λ must have moved, within its bounds, for the test to cover it: \(lambda)")
        let run = python.finish(timeout: 300)
        XCTAssertEqual(run.status, 0, run.stderr)
        for target in peers.targets {
            let lines = run.stdout.split(separator: "\n").filter { $0.hasPrefix("\(target.rawValue) epoch") }
            XCTAssertEqual(lines.count, 1, run.stdout)
            for (line, report) in zip(lines, history) {
                let numbers = line.split(separator: " ").compactMap { Double($0.trimmingCharacters(in: CharacterSet(charactersIn: "(),"))) }
                // epoch, train −ELBO, recon, KL, test −ELBO, β, seconds
                XCTAssertEqual(numbers.count, 7, String(line))
                guard numbers.count == 7 else { continue }
                XCTAssertEqual(numbers[1], report.trainELBO, accuracy: 1e-3 * report.trainELBO, "\(target): \(line)")
                XCTAssertEqual(numbers[4], report.testELBO!, accuracy: 1e-3 * report.testELBO!, "\(target): \(line)")
                // The effective β of the epoch's last step: 1/λ, λ as vaec's controller set it.
                XCTAssertEqual(numbers[5], report.beta, accuracy: 1e-3 * report.beta, "\(target): \(line)")
            }
        }
    }

    // MARK: - The generated text (no Python needed)

    /// Every comment of the model file is in the module, each on the line of the code it belongs to.
    func testCommentsComeAlongOnTheirLines() throws {
        let result = try Compiler.compile(path: TestPaths.samples.appendingPathComponent("mnist.vae").path)
        for target in ExportTarget.allCases {
            let module = try Exporter.module(result, target: target)
            let lines = module.split(separator: "\n").map(String.init)
            var scanner = SourceComments(SourceFile(path: "", text: result.model.sourceText))
            let comments = scanner.takeRest()
            XCTAssertEqual(comments.count, 7)
            for comment in comments {
                XCTAssertEqual(lines.filter { $0.contains("# " + comment) }.count, 1, "\(target): '\(comment)' must appear once")
            }
            func line(_ code: String) -> String { lines.first { $0.hasPrefix(code) } ?? "" }
            XCTAssertTrue(line("RECONSTRUCTION = \"sum\"").hasSuffix("# sum | mean over the 784 pixels"))
            XCTAssertTrue(line("INPUT_NAME, INPUT_SHAPE").hasSuffix("# one example; the batch axis is implicit"))
            XCTAssertTrue(line("LATENT_NAME, LATENT_SHAPE").hasSuffix("# the prior"))
            XCTAssertTrue(line("BATCH = \"mean\"").hasSuffix("# mean | sum over the batch (only scales the gradient)"))
            // The file's opening comment comes before the model's name.
            let header = lines.firstIndex { $0.contains("samples/mnist.vae — the pytorch/examples VAE") }
            let name = lines.firstIndex { $0.hasPrefix("MODEL_NAME = ") }
            XCTAssertNotNil(header)
            XCTAssertLessThan(header ?? .max, name ?? -1)
        }
    }

    /// A statement's comment trails its line in encode/decode; a standalone comment precedes the statement.
    func testStatementCommentsFollowTheStatements() throws {
        let data = TestPaths.samples.appendingPathComponent("data/mnist5k-train-images-idx3-ubyte").path
        let (_, text) = Self.extraModels(data: data).first { $0.name == "odd_names" }!
        let result = try TestModels.compile(text, path: "odd_names.vae")
        let torch = try Exporter.module(result, target: .pytorch).split(separator: "\n").map(String.init)
        let statement = torch.first { $0.contains("lambda_ = torch.tanh(") } ?? ""
        XCTAssertTrue(statement.hasSuffix("# two layers in one statement"), statement)
        XCTAssertTrue(torch.contains { $0.hasPrefix("BETA = ") && $0.hasSuffix("# a constant β") })
        let stabilised = Self.extraModels(data: data).first { $0.name == "stabilised" }!
        let jax = try Exporter.module(try TestModels.compile(stabilised.text, path: "s.vae"), target: .jax)
            .split(separator: "\n").map(String.init)
        let comment = jax.firstIndex { $0.contains("# vaec rewrites log(sigmoid e)") }
        let sample = jax.firstIndex { $0.contains("z_mean = ") }
        XCTAssertNotNil(comment)
        XCTAssertEqual(comment.map { $0 + 1 }, sample, "the standalone comment must directly precede the statement it is above")
    }

    /// Names follow the source: locals keep their names (a Python keyword gets a '_'), layers and
    /// parameters are vaec's, nested layers are numbered as the checker numbers them, and vaec's log
    /// rewrites appear in the code.
    func testNamesAndRewritesFollowTheSource() throws {
        let data = TestPaths.samples.appendingPathComponent("data/mnist5k-train-images-idx3-ubyte").path
        let extras = Self.extraModels(data: data)
        let odd = try TestModels.compile(extras[0].text, path: "odd_names.vae")
        XCTAssertEqual(odd.model.parameters.map(\.name).filter { $0.hasSuffix(".weight") },
                       ["encoder.lambda.1.weight", "encoder.lambda.2.weight", "fc_mu.weight", "encoder.code.sigma.weight",
                        "decoder.g.1.weight", "decoder.g.2.weight", "decoder.pixels.mean.weight", "decoder.pixels.sigma.weight"])
        let torch = try Exporter.module(odd, target: .pytorch)
        for expected in [
            "self.encoder = nn.ModuleDict()",                      // 'lambda' is not an attribute name: dicts
            "self.encoder[\"lambda\"] = nn.ModuleDict()",
            "self.encoder[\"lambda\"][\"1\"] = nn.Linear(784, 48)",
            "self.encoder[\"lambda\"][\"2\"] = nn.Linear(48, 24)",
            "self.fc_mu = nn.Linear(24, 8)",
            "lambda_ = torch.tanh(self.encoder[\"lambda\"][\"2\"](torch.relu(self.encoder[\"lambda\"][\"1\"](pixels))))",
            "self_ = torch.sqrt(torch.abs(lambda_) + 1) * 0.5 - torch.square(lambda_) / 3",
            // sigma: exp(e) gives log σ² = 2·log(exp e) = 2·e (StabilizePass)
            "code_logvar = 2 * self.encoder.code.sigma(lambda_)",
            "g = F.softplus(self.decoder.g[\"1\"](code)) - -torch.relu(self.decoder.g[\"2\"](code))",
            "def encode(self, pixels):",
        ] {
            XCTAssertTrue(torch.contains(expected), "missing: \(expected)")
        }
        let jax = try Exporter.module(try TestModels.compile(extras[1].text, path: "stabilised.vae"), target: .jax)
        XCTAssertTrue(jax.contains("\"log_scale\": params[\"decoder.x.log_scale\"],"))
        XCTAssertTrue(jax.contains("z_logvar = -jax.nn.softplus(-linear(params, \"encoder.s\", h)) + -jax.nn.softplus(linear(params, \"encoder.z.logvar\", h))"),
                      "log(s) with s = sigmoid(…) and log(1 − sigmoid(…)) must be vaec's softplus forms")
    }

    /// Convolutions export as PyTorch's own layers (nn.Conv2d, nn.ConvTranspose2d, whose weights are vaec's
    /// layouts) and lax convolutions in JAX; padding PyTorch's layers can take is theirs, TensorFlow's uneven
    /// split is an F.pad before a convolution or a crop after a transposed one, with a comment saying so.
    func testConvolutionsExportAsPyTorchLayers() throws {
        let keras = try Compiler.compile(path: TestPaths.samples.appendingPathComponent("keras_conv.vae").path)
        let torch = try Exporter.module(keras, target: .pytorch)
        for expected in [
            "self.encoder.h1 = nn.Conv2d(1, 32, kernel_size=3, stride=2)",
            "self.decoder.h1 = nn.ConvTranspose2d(64, 64, kernel_size=3, stride=2)",
            "self.decoder.x.logits = nn.ConvTranspose2d(32, 1, kernel_size=3, padding=1)",
            "# encoder.h1: 28x28 → 14x14 at stride 2, TensorFlow's same padding (top 0, bottom 1, left 0, right 1)",
            "h1 = torch.relu(self.encoder.h1(F.pad(x, (0, 1, 0, 1))))",
            "h = torch.relu(self.encoder.h(torch.flatten(h2, 1)))",
            "h = torch.reshape(torch.relu(self.decoder.h(z)), (-1, 64, 7, 7))",
            "h1 = torch.relu(self.decoder.h1(h)[:, :, 0:14, 0:14])",
            "INPUT_NAME, INPUT_SHAPE = \"x\", (1, 28, 28)",
            "values = values.reshape((len(raw),) + INPUT_SHAPE)",
        ] {
            XCTAssertTrue(torch.contains(expected), "missing: \(expected)")
        }
        let jax = try Exporter.module(keras, target: .jax)
        XCTAssertTrue(jax.contains("h1 = jax.nn.relu(conv2d(params, \"encoder.h1\", x, stride=(2, 2), padding=((0, 1), (0, 1))))"))
        XCTAssertTrue(jax.contains("\"logits\": conv_transpose2d(params, \"decoder.x.logits\", h2, stride=(1, 1), padding=((1, 1), (1, 1))),"))

        let channels = try TestModels.compile(Self.convolutionModel(data: "channels.npy").text, path: "conv_channels.vae")
        let channelsTorch = try Exporter.module(channels, target: .pytorch)
        for expected in [
            "g = torch.tanh(self.squeeze(F.pad(h, (1, 1, 0, 1))))",              // (left, right, top, bottom)
            "u = F.softplus(self.decoder.u(h)[:, :, 0:14, 1:15])",               // rows, then columns
            "self.decoder.v[\"2\"] = nn.ConvTranspose2d(2, 4, kernel_size=(4, 2), stride=2)",
            "\"log_sigma\": self.decoder.x.log_sigma,",                         // [C, H, W] in vaec too
            "if tuple(np.shape(raw)[1:]) == (14, 14, 4):",                        // a TensorFlow-ordered file
        ] {
            XCTAssertTrue(channelsTorch.contains(expected), "missing: \(expected)")
        }
    }

    /// The exporter refuses a layer name PyTorch cannot hold, naming the model file, instead of writing a
    /// module whose state_dict keys would not be vaec's.
    func testANameTorchCannotHoldIsRefused() throws {
        let text = TestModels.mlp(inputs: 4, hidden: 3, latents: 2).replacingOccurrences(of: "h = relu(linear(x, 3))", with: "h = relu(linear(x, 3, name: \"training\"))")
        let result = try TestModels.compile(text, path: "clash.vae")
        XCTAssertThrowsError(try Exporter.module(result, target: .pytorch)) { error in
            XCTAssertTrue("\(error)".contains("clash.vae"), "\(error)")
            XCTAssertTrue("\(error)".contains("training"), "\(error)")
        }
        XCTAssertNoThrow(try Exporter.module(result, target: .jax), "JAX keys are plain strings")
    }

    // MARK: - vaec import

    /// A plain safetensors file under DistributedDataParallel's names comes back as a vaec checkpoint
    /// with the same values; a wrong shape, a missing or an extra tensor, or a damaged vaec checkpoint is
    /// refused with every problem named.
    func testImportChecksAndConverts() throws {
        let folder = try TestPaths.temporaryFolder(for: self)
        let result = try TestModels.compile(TestModels.mlp(inputs: 6, hidden: 5, latents: 2), path: "tiny.vae")
        let model = result.model
        var random = RandomSource(seed: 4)
        var plain = SafeTensors()
        for p in model.parameters {
            plain.tensors["module." + p.name] = SafeTensors.Tensor(shape: p.dims, values: (0..<p.count).map { _ in random.nextUniform() })
        }
        plain.metadata = ["format": "pt", "step": "93"]   // what safetensors.torch.save_file writes, plus a step
        let input = folder.appendingPathComponent("ddp.safetensors").path
        try plain.write(to: input)
        let output = folder.appendingPathComponent("imported.safetensors").path
        let summary = try CheckpointImport.run(from: input, model: model, to: output)
        XCTAssertEqual(summary.strippedPrefix, "module.")
        XCTAssertEqual(summary.step, 93)
        XCTAssertFalse(summary.wasSealed)
        let store = ParameterStore(specs: model.parameters)
        let metadata = try Checkpoint.load(into: store, from: output)
        XCTAssertEqual(metadata["step"], "93")
        for (index, p) in model.parameters.enumerated() {
            XCTAssertEqual(store.values(index), plain.tensors["module." + p.name]!.values, p.name)
        }
        // An imported vaec checkpoint is verified and passes through.
        XCTAssertTrue(try CheckpointImport.run(from: output, model: model, to: output + ".again").wasSealed)

        var wrong = SafeTensors()
        for p in model.parameters where p.name != "encoder.h.bias" {
            let dims = p.name == "decoder.h.weight" ? p.dims.reversed() : p.dims
            wrong.tensors[p.name] = SafeTensors.Tensor(shape: Array(dims), values: [Float](repeating: 0, count: p.count))
        }
        wrong.tensors["decoder.extra"] = SafeTensors.Tensor(shape: [1], values: [0])
        try wrong.write(to: input)
        XCTAssertThrowsError(try CheckpointImport.run(from: input, model: model, to: output)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains(input), text)
            XCTAssertTrue(text.contains("no tensor 'encoder.h.bias'"), text)
            XCTAssertTrue(text.contains("'decoder.h.weight' with shape [2, 5]") && text.contains("transposed?"), text)
            XCTAssertTrue(text.contains("'decoder.extra'"), text)
        }

        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: output)))
        bytes[bytes.count - 1] ^= 0x40
        try Data(bytes).write(to: URL(fileURLWithPath: input))
        XCTAssertThrowsError(try CheckpointImport.run(from: input, model: model, to: output)) { error in
            XCTAssertTrue("\(error)".contains("damaged"), "\(error)")
        }
    }

    /// Convolution weights are stored in PyTorch's layouts, so a state_dict of nn.Conv2d and
    /// nn.ConvTranspose2d weights imports as it is; TensorFlow's layout or a swapped one is refused with a hint.
    func testImportTakesConvolutionWeightsInPyTorchsLayout() throws {
        let folder = try TestPaths.temporaryFolder(for: self)
        let model = try TestModels.compile(Self.convolutionModel(data: "channels.npy").text, path: "conv_channels.vae").model
        XCTAssertEqual(model.parameters.first { $0.name == "encoder.h.weight" }?.dims, [5, 4, 3, 2], "Conv2d: [out, in, kh, kw]")
        XCTAssertEqual(model.parameters.first { $0.name == "decoder.u.weight" }?.dims, [2, 3, 3, 3], "ConvTranspose2d: [in, out, kh, kw]")
        var random = RandomSource(seed: 8)
        var plain = SafeTensors()
        for p in model.parameters {
            plain.tensors[p.name] = SafeTensors.Tensor(shape: p.dims, values: (0..<p.count).map { _ in random.nextUniform() })
        }
        let input = folder.appendingPathComponent("torch.safetensors").path
        let output = folder.appendingPathComponent("imported.safetensors").path
        try plain.write(to: input)
        _ = try CheckpointImport.run(from: input, model: model, to: output)
        let store = ParameterStore(specs: model.parameters)
        _ = try Checkpoint.load(into: store, from: output)
        for (index, p) in model.parameters.enumerated() {
            XCTAssertEqual(store.values(index), plain.tensors[p.name]!.values, p.name)
        }
        plain.tensors["encoder.h.weight"]!.shape = [3, 2, 4, 5]          // TensorFlow's HWIO
        plain.tensors["decoder.u.weight"]!.shape = [3, 2, 3, 3]          // a Conv2d's layout
        try plain.write(to: input)
        XCTAssertThrowsError(try CheckpointImport.run(from: input, model: model, to: output)) { error in
            XCTAssertTrue("\(error)".contains("'encoder.h.weight' with shape [3, 2, 4, 5], but the model's is [5, 4, 3, 2] (TensorFlow's"), "\(error)")
            XCTAssertTrue("\(error)".contains("'decoder.u.weight' with shape [3, 2, 3, 3], but the model's is [2, 3, 3, 3] (a Conv2d weight for a ConvTranspose2d"), "\(error)")
        }
    }

    /// The commands: export writes a module, import a checkpoint; mistakes exit 1 with a sentence.
    func testExportAndImportCommands() throws {
        let folder = try TestPaths.temporaryFolder(for: self)
        let model = TestPaths.samples.appendingPathComponent("mnist.vae").path
        let module = folder.appendingPathComponent("m.py").path
        let export = try VAECProcess.run(["export", model, "--to", "jax", "-o", module])
        XCTAssertEqual(export.status, 0, export.stderr)
        XCTAssertTrue(try String(contentsOfFile: module, encoding: .utf8).contains("def loss_and_grads(params, x, eps, hypers=None):"))
        let bad = try VAECProcess.run(["export", model, "--to", "tensorflow"])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains("unknown export target 'tensorflow'"), bad.stderr)
        let missing = try VAECProcess.run(["import", folder.appendingPathComponent("none.safetensors").path, "--model", model, "-o", module + ".st"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("none.safetensors"), missing.stderr)
        // vaec grad takes ε from a .npy file ([rows, latents]) and refuses one of another shape.
        let noise = folder.appendingPathComponent("eps.npy").path
        try NPYFile.write(float32: (0..<40).map { Float($0) / 40 }, dims: [2, 20], to: noise)
        let grad = try VAECProcess.run(["grad", model, "--rows", "0:2", "--noise", noise])
        XCTAssertEqual(grad.status, 0, grad.stderr)
        XCTAssertTrue(grad.stdout.contains("noise from \(noise)"), grad.stdout)
        try NPYFile.write(float32: [Float](repeating: 0, count: 40), dims: [20, 2], to: noise)
        let wrong = try VAECProcess.run(["grad", model, "--rows", "0:2", "--noise", noise])
        XCTAssertEqual(wrong.status, 1)
        XCTAssertTrue(wrong.stderr.contains("but ε is [rows, 20]"), wrong.stderr)
        let help = try VAECProcess.run(["help", "import"])
        XCTAssertTrue(help.stdout.contains("vaec import CHECKPOINT.safetensors --model"), help.stdout)
    }
}

/// The Python that runs the exported modules: $VAEC_PYTHON, the peers' environment that
/// ../shared/anchors/setup.sh creates (~/.cache/vaec-anchors), or python3, whichever first has numpy and
/// PyTorch or JAX.
enum PythonPeers {
    struct Found {
        var python: String
        var targets: [ExportTarget]
    }

    static let found: Found? = {
        var candidates: [String] = []
        if let v = ProcessInfo.processInfo.environment["VAEC_PYTHON"], !v.isEmpty { candidates.append(v) }
        candidates.append(FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/vaec-anchors/bin/python").path)
        candidates.append("python3")
        let probe = "import importlib.util as u; print(*[int(u.find_spec(m) is not None) for m in ('numpy', 'torch', 'jax')])"
        for candidate in candidates {
            guard let result = try? run(candidate, ["-c", probe], timeout: 60), result.status == 0 else { continue }
            let flags = result.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) == "1" }
            guard flags.count == 3, flags[0] else { continue }
            let targets = [flags[1] ? ExportTarget.pytorch : nil, flags[2] ? .jax : nil].compactMap { $0 }
            if !targets.isEmpty { return Found(python: candidate, targets: targets) }
        }
        return nil
    }()

    static func require() throws -> Found {
        guard let found else {
            throw XCTSkip("no Python with numpy and PyTorch or JAX (tried $VAEC_PYTHON, ~/.cache/vaec-anchors/bin/python, python3): the export equivalence check did not run; ../shared/anchors/setup.sh installs them")
        }
        return found
    }

    struct Result { var status: Int32; var stdout: String; var stderr: String }

    /// A running Python fed on stdin, its output collected in the background.
    final class Running: @unchecked Sendable {
        let process = Process()
        let input = Pipe()
        private let lock = NSLock()
        private var out = Data(), err = Data()
        private let done = DispatchGroup()

        fileprivate func collect(_ pipe: Pipe, stdout: Bool) {
            done.enter()
            DispatchQueue.global().async {
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                self.lock.lock()
                if stdout { self.out = data } else { self.err = data }
                self.lock.unlock()
                self.done.leave()
            }
        }

        /// Writes to stdin; a driver that already ended is noticed at `finish` (SIGPIPE is ignored).
        func write(_ data: Data) { try? input.fileHandleForWriting.write(contentsOf: data) }

        /// Closes stdin and waits for the end (killed after `timeout` seconds).
        func finish(timeout: TimeInterval) -> Result {
            try? input.fileHandleForWriting.close()
            let watchdog = DispatchWorkItem { [process] in if process.isRunning { process.terminate() } }
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
            done.wait()
            process.waitUntilExit()
            watchdog.cancel()
            lock.lock(); defer { lock.unlock() }
            return Result(status: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self),
                          stderr: String(decoding: err, as: UTF8.self))
        }
    }

    static func start(_ python: String, _ arguments: [String]) throws -> Running {
        signal(SIGPIPE, SIG_IGN)
        let running = Running()
        let process = running.process
        if python.contains("/") {
            process.executableURL = URL(fileURLWithPath: python)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [python] + arguments
        }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = running.input
        try process.run()
        running.collect(out, stdout: true)
        running.collect(err, stdout: false)
        return running
    }

    /// Runs `python arguments…` (a bare name is looked up on PATH) to completion, killed after `timeout` s.
    static func run(_ python: String, _ arguments: [String], timeout: TimeInterval) throws -> Result {
        try start(python, arguments).finish(timeout: timeout)
    }
}
