import Foundation
import XCTest
@testable import VAECore

/// The image side of the language: list literals, image inputs, conv2d, conv_transpose2d, flatten and
/// reshape, their shapes and parameters, PyTorch's flattening order, and image data on disk. The
/// malformed cases are fixtures in Fixtures/diagnostics (shape-conv-…, function-conv-…, …).
final class ConvLanguageTests: XCTestCase {
    /// A tiny convolutional VAE: [2, 4, 4] → conv 3 channels (4×4 → 2×2) → flatten 12 → z [2] → 12 →
    /// [3, 2, 2] → conv_transpose 2 channels back to [2, 4, 4].
    static let tiny = """
        model tiny_conv
        input  x: [2, 4, 4]
        latent z: [2] ~ normal(0, 1)

        encoder q(z | x) {
          h = relu(conv2d(x, 3, kernel: [3, 3], stride: 2, padding: same))
          z ~ normal(mean: linear(flatten(h), 2), logvar: linear(flatten(h), 2))
        }

        decoder p(x | z) {
          h = reshape(relu(linear(z, 12)), [3, 2, 2])
          x ~ bernoulli(logits: conv_transpose2d(h, 2, kernel: 3, stride: 2, padding: same))
        }
        """

    // MARK: syntax

    func testListLiteralsParseAndPrint() throws {
        let file = try Parser.parse(SourceFile(path: "t.vae", text: Self.tiny))
        let printed = ASTPrinter.print(file)
        XCTAssertTrue(printed.contains("assign h = relu(conv2d(x, 3, kernel: [3, 3], stride: 2, padding: same))"), printed)
        XCTAssertTrue(printed.contains("assign h = reshape(relu(linear(z, 12)), [3, 2, 2])"), printed)
        // A list's items are expressions, and the list's range covers its brackets.
        let source = SourceFile(path: "t.vae", text: "model m\ntrain { k: [1 + 2, -3] }")
        let setting = try Parser.parse(source).trains[0].settings[0]
        guard case .list(let items, let range) = setting.value else { return XCTFail("not a list: \(setting.value)") }
        XCTAssertEqual(items.count, 2)
        XCTAssertEqual(ASTPrinter.expression(setting.value), "[(1 + 2), (-3)]")
        XCTAssertEqual(String(decoding: source.bytes[range.start..<range.end], as: UTF8.self), "[1 + 2, -3]")
    }

    // MARK: the keras.io sample

    /// samples/keras_conv.vae compiles to the keras.io model: the shapes of its layers (stored
    /// channels-last in the IR), PyTorch's weight layouts, and Keras's parameter count (its model
    /// summary: 69 076 in the encoder, 65 089 in the decoder).
    func testKerasSampleHasTheExamplesShapesAndParameters() throws {
        let result = try Compiler.compile(path: TestPaths.samples.appendingPathComponent("keras_conv.vae").path)
        let model = result.program.model
        XCTAssertEqual(model.input.dims, [1, 28, 28])
        XCTAssertEqual(model.input.storedDims, [28, 28, 1])
        let graph = model.graph
        func shape(_ name: String) -> Shape? { graph.nodes.first { $0.name == name }?.shape }
        let expected: [(String, [Int])] = [
            ("x", [28, 28, 1]), ("encoder.h1", [14, 14, 32]), ("encoder.h2", [7, 7, 64]), ("encoder.h", [16]),
            ("decoder.h", [7, 7, 64]), ("decoder.h1", [14, 14, 64]), ("decoder.h2", [28, 28, 32]),
            ("decoder.x.logits", [28, 28, 1]),
        ]
        for (name, dims) in expected { XCTAssertEqual(shape(name), Shape(batched: true, dims), name) }

        let parameters = Dictionary(uniqueKeysWithValues: model.parameters.map { ($0.name, $0) })
        let layers: [(String, weight: [Int], bias: Int, fanIn: Int)] = [
            ("encoder.h1", [32, 1, 3, 3], 32, 1 * 9), ("encoder.h2", [64, 32, 3, 3], 64, 32 * 9),
            ("encoder.h", [16, 3136], 16, 3136), ("encoder.z.mean", [2, 16], 2, 16), ("encoder.z.logvar", [2, 16], 2, 16),
            ("decoder.h", [3136, 2], 3136, 2),
            // conv_transpose2d: [in, out, kh, kw], and PyTorch's fan_in is dim 1 · kh · kw.
            ("decoder.h1", [64, 64, 3, 3], 64, 64 * 9), ("decoder.h2", [64, 32, 3, 3], 32, 32 * 9),
            ("decoder.x.logits", [32, 1, 3, 3], 1, 1 * 9),
        ]
        XCTAssertEqual(model.parameters.count, 2 * layers.count)
        for (layer, weightDims, biasCount, fanIn) in layers {
            let weight = try XCTUnwrap(parameters["\(layer).weight"], layer)
            let bias = try XCTUnwrap(parameters["\(layer).bias"], layer)
            XCTAssertEqual(weight.dims, weightDims, layer)
            XCTAssertEqual(bias.dims, [biasCount], layer)
            let bound = Float(1 / Double(fanIn).squareRoot())
            XCTAssertEqual(weight.initialization, .uniform(bound: bound), layer)
            XCTAssertEqual(bias.initialization, .uniform(bound: bound), layer)
        }
        let encoder = model.parameters.filter { $0.name.hasPrefix("encoder.") }.reduce(0) { $0 + $1.count }
        let decoder = model.parameters.filter { $0.name.hasPrefix("decoder.") }.reduce(0) { $0 + $1.count }
        XCTAssertEqual(encoder, 69_076)
        XCTAssertEqual(decoder, 65_089)
        // The compiled program has a gradient for each, shaped like it.
        for p in model.parameters {
            let id = try XCTUnwrap(result.program.graph.output(OutputName.gradient(p.name)), p.name)
            XCTAssertEqual(result.program.graph[id].shape, Shape(batched: false, p.dims), p.name)
        }
    }

    /// Several convolutions in one statement are numbered like linear layers, in source order
    /// (inner first), and a learned per-feature σ of an image is stored in the input's layout.
    func testLayerNamesAndPerFeatureScaleOfAnImage() throws {
        let text = """
            model named
            input  x: [2, 4, 4]
            latent z: [2] ~ normal(0, 1)
            encoder q(z | x) {
              h = flatten(relu(conv2d(relu(conv2d(x, 3, kernel: 3, padding: same)), 1, kernel: 1)))
              z ~ normal(mean: linear(h, 2), logvar: linear(h, 2))
            }
            decoder p(x | z) {
              x ~ normal(mean: reshape(linear(z, 32), [2, 4, 4]), sigma: learned_per_feature)
            }
            """
        let model = try TestModels.compile(text).program.model
        let names = model.parameters.map { "\($0.name) \($0.dims)" }
        XCTAssertEqual(Array(names.prefix(4)), ["encoder.h.1.weight [3, 2, 3, 3]", "encoder.h.1.bias [3]",
                                                "encoder.h.2.weight [1, 3, 1, 1]", "encoder.h.2.bias [1]"])
        // A per-pixel scale of an image is a parameter in the user's (PyTorch's) layout, [C, H, W].
        XCTAssertTrue(names.contains("decoder.x.log_sigma [2, 4, 4]"), "\(names)")
    }

    // MARK: diagnostics not covered by the fixtures

    /// Each mistake gives exactly one error, at its place, with its words (the fixtures check the
    /// formatting; these check a few more messages).
    func testMoreMistakesGiveOneClearError() throws {
        let cases: [(old: String, new: String, message: String)] = [
            ("padding: same))\n  z", "padding: \"same\"))\n  z", "padding is a word, not a string"),
            ("[3, 2, 2])", "[3, 2, 2, 1])", "not a shape of 4 dimensions"),
            ("[3, 2, 2])", "12)", "reshape's shape is a list"),
            ("[3, 2, 2])", "[3, 2, 0])", "a dimension must be a whole number"),
            ("kernel: [3, 3]", "kernel: [3, x]", "the kernel must be a positive whole number"),
            ("relu(linear(z, 12))", "relu(conv_transpose2d(z, 3, kernel: 2))", "conv_transpose2d needs an image"),
            ("linear(flatten(h), 2), logvar", "linear(h, 2), logvar", "linear needs a vector of features per example, but its input has shape [B,3,2,2]"),
            ("x ~ bernoulli(logits: conv_transpose2d(h, 2, kernel: 3, stride: 2, padding: same))",
             "x ~ bernoulli(logits: conv_transpose2d(h, 2, kernel: 3, stride: 2))", "has shape [B,2,5,5], but input 'x' is [B,2,4,4]"),
            ("relu(conv2d(x, 3,", "relu(x + conv2d(x, 3,", "shape mismatch: '+' between [B,2,4,4] and [B,3,2,2]"),
        ]
        for (old, new, message) in cases {
            XCTAssertEqual(Self.tiny.components(separatedBy: old).count, 2, old)
            let text = Self.tiny.replacingOccurrences(of: old, with: new)
            let failure: CompileFailure
            do {
                _ = try Compiler.compile(source: SourceFile(path: "t.vae", text: text))
                XCTFail("compiled without an error: \(new)")
                continue
            } catch {
                failure = error
            }
            let errors = failure.diagnostics.filter { $0.severity == .error }
            XCTAssertEqual(errors.count, 1, failure.formatted())
            XCTAssertTrue(errors.first?.message.contains(message) ?? false, "\(new): \(failure.formatted())")
        }
    }

    // MARK: semantics

    /// flatten lists an image in PyTorch's [C, H, W] order although the IR stores it [H, W, C], and
    /// reshape to [C, H, W] is its inverse: checked on values that spell their own (c, h, w).
    func testFlattenAndReshapeUsePyTorchsOrder() throws {
        let (c, h, w, batch) = (2, 3, 4, 2)
        func code(_ n: Int, _ ci: Int, _ hi: Int, _ wi: Int) -> Float { Float(1000 * n + 100 * ci + 10 * hi + wi) }
        // The input as stored: example-major, then [H, W, C].
        var stored: [Float] = []
        for n in 0..<batch { for hi in 0..<h { for wi in 0..<w { for ci in 0..<c { stored.append(code(n, ci, hi, wi)) } } } }
        // PyTorch's x.flatten(1) of an NCHW tensor: channel, then row, then column.
        var pytorchOrder: [Float] = []
        for n in 0..<batch { for ci in 0..<c { for hi in 0..<h { for wi in 0..<w { pytorchOrder.append(code(n, ci, hi, wi)) } } } }

        let flat = try run("flatten(x)", input: [c, h, w], values: stored, batch: batch)
        XCTAssertEqual(flat.shape, Shape(batched: true, [c * h * w]))
        XCTAssertEqual(flat.values, pytorchOrder)
        // reshape to an image puts a PyTorch-ordered vector back into the stored layout.
        let back = try run("reshape(flatten(x), [2, 3, 4])", input: [c, h, w], values: stored, batch: batch)
        XCTAssertEqual(back.shape, Shape(batched: true, [h, w, c]))
        XCTAssertEqual(back.values, stored)
        // reshape(x, [24]) is flatten; a single-channel image flattens in its stored order.
        XCTAssertEqual(try run("reshape(x, [24])", input: [c, h, w], values: stored, batch: batch).values, pytorchOrder)
        let single = (0..<12).map(Float.init)
        XCTAssertEqual(try run("flatten(x)", input: [1, 3, 4], values: single, batch: 1).values, single)
    }

    /// Lowers `expression` of an input `x` declared `input` and runs it on `values`.
    private func run(_ expression: String, input: [Int], values: [Float], batch: Int) throws -> (shape: Shape, values: [Float]) {
        let text = "model m\nencoder q(z | x) { v = \(expression) }"
        let file = try Parser.parse(SourceFile(path: "t.vae", text: text))
        struct NotAnAssignment: Error {}
        guard case .assign(_, let e) = file.encoders[0].statements[0] else { throw NotAnAssignment() }
        var checker = Checker(source: SourceFile(path: "t.vae", text: text))
        let spec = InputSpec(name: "x", dims: input)
        let x = checker.builder.add(.input("x"), name: "x", shape: Shape(batched: true, spec.storedDims))
        checker.scope = ["x": .value(x)]
        let v = try checker.lowerTensor(e, layer: LayerNamer(base: "v", expression: e))
        checker.builder.setOutput("v", v)
        let graphRun = GraphRun(graph: checker.builder.graph, outputs: ["v"], batch: batch)
        graphRun.bind(.input("x"), values)
        graphRun.run()
        return (checker.builder.shape(v), graphRun.values("v"))
    }

    /// The tiny model runs forward through the compiled program: every output finite, the decoder's
    /// output in the input's stored shape.
    func testTinyConvolutionalModelRuns() throws {
        let program = try TestModels.compile(Self.tiny).program
        let batch = 3
        let graphRun = GraphRun(graph: program.graph, outputs: [OutputName.loss, OutputName.decoderOutput] + program.model.parameters.map { OutputName.gradient($0.name) }, batch: batch)
        var random = RandomSource(seed: 3)
        for p in program.model.parameters { graphRun.bind(.parameter(p.name), random.uniform(p.count, in: -0.5...0.5)) }
        graphRun.bind(.input("x"), random.uniform(batch * 32, in: 0...1))
        graphRun.bind(.noise("z"), random.normals(batch * 2))
        graphRun.executable.setHyper("beta", 1)
        graphRun.executable.setHyper("1/batch", 1 / Float(batch))
        graphRun.run()
        XCTAssertTrue(graphRun.scalar(OutputName.loss).isFinite)
        XCTAssertEqual(graphRun.values(OutputName.decoderOutput).count, batch * 32)
        for p in program.model.parameters {
            let g = graphRun.values(OutputName.gradient(p.name))
            XCTAssertEqual(g.count, p.count, p.name)
            XCTAssertTrue(g.allSatisfy(\.isFinite), p.name)
        }
    }

    // MARK: data and pictures

    /// Images of several channels on disk in PyTorch's [N, C, H, W] are moved to the stored
    /// channels-last rows; [N, H, W, C] (TensorFlow's) is taken as it is; one channel needs no move.
    func testImageDataLoadsChannelsLast() throws {
        let folder = try TestPaths.temporaryFolder(for: self)
        let (count, c, h, w) = (2, 2, 3, 4)
        func code(_ n: Int, _ ci: Int, _ hi: Int, _ wi: Int) -> Float { Float(1000 * n + 100 * ci + 10 * hi + wi) }
        var channelsFirst: [Float] = [], channelsLast: [Float] = []
        for n in 0..<count { for ci in 0..<c { for hi in 0..<h { for wi in 0..<w { channelsFirst.append(code(n, ci, hi, wi)) } } } }
        for n in 0..<count { for hi in 0..<h { for wi in 0..<w { for ci in 0..<c { channelsLast.append(code(n, ci, hi, wi)) } } } }
        let input = InputSpec(name: "x", dims: [c, h, w])

        let nchw = folder.appendingPathComponent("nchw.npy").path
        try NPYFile.write(float32: channelsFirst, dims: [count, c, h, w], to: nchw)
        let loaded = try Dataset.load(DataSource(path: nchw, format: .npy, scale: 1), relativeTo: folder.path, input: input)
        XCTAssertEqual(loaded.values, channelsLast)
        XCTAssertEqual(loaded.features, c * h * w)

        let nhwc = folder.appendingPathComponent("nhwc.npy").path
        try NPYFile.write(float32: channelsLast, dims: [count, h, w, c], to: nhwc)
        XCTAssertEqual(try Dataset.load(DataSource(path: nhwc, format: .npy, scale: 1), relativeTo: folder.path, input: input).values,
                       channelsLast)

        // MNIST-like [N, H, W] for an input [1, H, W]: the same values in the same order.
        let grey = folder.appendingPathComponent("grey.npy").path
        let values = (0..<(count * h * w)).map(Float.init)
        try NPYFile.write(float32: values, dims: [count, h, w], to: grey)
        XCTAssertEqual(try Dataset.load(DataSource(path: grey, format: .npy, scale: 1), relativeTo: folder.path,
                                        input: InputSpec(name: "x", dims: [1, h, w])).values, values)
    }

    func testPicturesDrawAnImageInputAtItsSize() {
        XCTAssertTrue(Pictures.imageShape([1, 28, 28]) == (28, 28))
        // Channels one above the other.
        XCTAssertTrue(Pictures.imageShape([3, 8, 5]) == (24, 5))
    }

    /// An image model's compiled program reads back: its input node is stored channels-last
    /// ([B,H,W,C]), which the reader's consistency check must expect.
    func testAConvolutionalProgramReadsBack() throws {
        let sample = TestPaths.samples.appendingPathComponent("keras_conv.vae")
        let program = try Compiler.compile(path: sample.path).program
        let back = try CompiledProgram.decode(try program.encoded(), path: "keras_conv.vaek")
        XCTAssertEqual(back.graph.nodes, program.graph.nodes)
        XCTAssertEqual(back.model.input.storedDims, [28, 28, 1])
    }
}
