import Foundation
import XCTest
@testable import VAECore

/// A table-driven check of every IR op's VJP rule against central finite differences (in the manner of
/// JAX's lax_autodiff_test): for each op a tiny graph `loss = Σ_batch Σ_features (w ⊙ op(leaves…))` with
/// fixed random weights w, its gradient from `ReverseMode`, run by `Executable`, compared entry by entry
/// with (loss(x + h) − loss(x − h)) / 2h, the losses also computed by `Executable`.
///
/// `checks(for:)` is a switch over `Op` without a `default`, so an op added to the enum does not compile
/// here until it has a case.
final class GradientCheckTests: XCTestCase {
    static let batch = 3

    // MARK: - The table

    /// Every op, one representative each (ops with a payload take a typical one).
    static let allOps: [Op] = [
        .input("x"), .parameter("p"), .noise("eps"), .hyper("beta"), .constant(1),
        .negate, .exp, .log, .square, .sqrt, .abs, .relu, .sigmoid, .tanh, .softplus, .positiveStep, .sign,
        .logGamma, .digamma, .trigamma, .cbLogNormalizer, .cbLogNormalizerSlope,
        .add, .subtract, .multiply, .divide, .maximum,
        .dense, .denseTransposed, .outerSum,
        .sumFeatures, .sumBatch, .broadcast(.scalar),
        .conv2d(sameStride1), .conv2dTransposed(sameStride1), .conv2dFilter(sameStride1),
        .reshape([4]), .channelsFirst, .channelsLast, .sumToChannels,
    ]

    /// Convolution geometries of the image cases: padded on both sides, strided with the odd zero after
    /// (Keras's `same`), and unpadded with a non-square kernel.
    static let sameStride1 = try! ConvGeometry.convolution(input: Size2(4, 4), kernel: Size2(3, 3), stride: Size2(1, 1), padding: .same)
    static let sameStride2 = try! ConvGeometry.convolution(input: Size2(4, 6), kernel: Size2(3, 3), stride: Size2(2, 2), padding: .same)
    static let validRectangular = try! ConvGeometry.convolution(input: Size2(5, 4), kernel: Size2(2, 3), stride: Size2(1, 1), padding: .valid)
    static let geometries = [sameStride1, sameStride2, validRectangular]

    /// How an op is checked: gradient cases against finite differences, and/or a check of its value
    /// (for ops whose VJP is intentionally nil, the value is what can be checked).
    struct Checks {
        var gradients: [GradientCase] = []
        var value: ((GradientCheckTests) throws -> Void)?
    }

    static func checks(for op: Op) -> Checks {
        let B = Shape.example(4), scalar = Shape.scalar
        func unary(_ op: Op, _ domain: Domain) -> [GradientCase] {
            [GradientCase("\(op.mnemonic) [B,4]", [.parameter(B, domain)]) { b, x in b.unary(op, x[0]) },
             GradientCase("\(op.mnemonic) [3,4]", [.parameter(.fixed(3, 4), domain)]) { b, x in b.unary(op, x[0]) }]
        }
        /// Every broadcasting combination of `Shape.broadcast`, so `VJPRules.reduce` is exercised.
        func binary(_ op: Op, _ left: Domain, _ right: Domain) -> [GradientCase] {
            let image = Shape.example(2, 3, 4)   // [B,H,W,C]: a [C] vector broadcasts along the channels
            let pairs: [(Shape, Shape)] = [(B, B), (B, scalar), (scalar, B), (B, .fixed(4)), (.fixed(4), B),
                                           (B, .perExample), (.perExample, B), (.fixed(4), .fixed(4)),
                                           (image, .fixed(4)), (.fixed(4), image), (.fixed(3, 4), .fixed(4))]
            return pairs.map { s, t in
                GradientCase("\(op.mnemonic) \(s) \(t)", [.parameter(s, left), .parameter(t, right)]) { b, x in
                    b.binary(op, x[0], x[1])
                }
            }
        }
        switch op {
        case .input:
            return Checks(gradients: [GradientCase("input [B,4]", [.input(B, .any)]) { _, x in x[0] }])
        case .parameter:
            return Checks(gradients: [GradientCase("param [B,4]", [.parameter(B, .any)]) { _, x in x[0] },
                                      GradientCase("param [3,4]", [.parameter(.fixed(3, 4), .any)]) { _, x in x[0] }])
        case .noise:
            return Checks(gradients: [GradientCase("noise [B,4]", [.noise(B, .any)]) { _, x in x[0] }])
        case .hyper:
            return Checks(gradients: [GradientCase("hyper · param", [.hyper(.any), .parameter(B, .any)]) { b, x in
                b.binary(.multiply, x[0], x[1])
            }])
        case .constant:
            return Checks(gradients: [GradientCase("const · param", [.constant(.any), .parameter(B, .any)]) { b, x in
                b.binary(.multiply, x[0], x[1])
            }])
        case .negate, .exp, .square, .sigmoid, .tanh, .softplus:
            return Checks(gradients: unary(op, .any))
        case .log, .sqrt:
            return Checks(gradients: unary(op, .positive))
        // Kinks at 0: points at least 0.2 away, farther than the finite-difference step.
        case .abs, .relu:
            return Checks(gradients: unary(op, .awayFromZero))
        // Piecewise constant: the VJP is nil (zero almost everywhere), which finite differences away
        // from 0 confirm; the value is checked too.
        case .positiveStep:
            return Checks(gradients: unary(op, .awayFromZero), value: { try $0.checkPositiveStepValues() })
        case .sign:
            return Checks(gradients: unary(op, .awayFromZero), value: { try $0.checkSignValues() })
        case .logGamma:
            return Checks(gradients: unary(op, .positive))
        case .digamma:
            return Checks(gradients: unary(op, .positive), value: { try $0.checkDigammaValues() })
        // Derivatives themselves, never differentiated again: their VJP is nil, so their values are checked.
        case .trigamma:
            return Checks(value: { try $0.checkTrigammaValues() })
        case .cbLogNormalizer:
            return Checks(gradients: unary(op, .wide), value: { try $0.checkCBLogNormalizerValues() })
        case .cbLogNormalizerSlope:
            return Checks(value: { try $0.checkCBLogNormalizerSlopeValues() })
        case .add, .subtract, .multiply:
            return Checks(gradients: binary(op, .any, .any))
        case .divide:
            return Checks(gradients: binary(op, .any, .awayFromZero))
        // Ties excluded: |a| ≥ 1.5 > |b|, so a − b keeps its sign under the step.
        case .maximum:
            return Checks(gradients: binary(op, .large, .small))
        case .dense:
            return Checks(gradients: [GradientCase("dense x[B,4] W[3,4]", [.parameter(B, .any), .parameter(.fixed(3, 4), .any)]) { b, x in
                b.binary(.dense, x[0], x[1])
            }])
        case .denseTransposed:
            return Checks(gradients: [GradientCase("dense_t dy[B,3] W[3,4]", [.parameter(.example(3), .any), .parameter(.fixed(3, 4), .any)]) { b, x in
                b.binary(.denseTransposed, x[0], x[1])
            }])
        case .outerSum:
            return Checks(gradients: [GradientCase("outer_sum a[B,3] x[B,4]", [.parameter(.example(3), .any), .parameter(B, .any)]) { b, x in
                b.binary(.outerSum, x[0], x[1])
            }])
        case .sumFeatures:
            return Checks(gradients: [GradientCase("sum_features [B,4]", [.parameter(B, .any)]) { b, x in b.unary(.sumFeatures, x[0]) },
                                      GradientCase("sum_features [4]", [.parameter(.fixed(4), .any)]) { b, x in b.unary(.sumFeatures, x[0]) }])
        case .sumBatch:
            return Checks(gradients: [GradientCase("sum_batch [B,4]", [.parameter(B, .any)]) { b, x in b.unary(.sumBatch, x[0]) },
                                      GradientCase("sum_batch [B]", [.parameter(.perExample, .any)]) { b, x in b.unary(.sumBatch, x[0]) }])
        case .conv2d, .conv2dTransposed, .conv2dFilter:
            // Each of the trio on every geometry, with 2 channels in and 3 out.
            return Checks(gradients: geometries.map { g in
                let x = Shape.example(g.input.height, g.input.width, 2), y = Shape.example(g.output.height, g.output.width, 3)
                let w = Shape.fixed(3, 2, g.kernel.height, g.kernel.width)
                let (op, operands): (Op, [Shape]) = switch op {
                case .conv2d: (.conv2d(g), [x, w])
                case .conv2dTransposed: (.conv2dTransposed(g), [y, w])
                default: (.conv2dFilter(g), [y, x])
                }
                return GradientCase("\(op.mnemonic) \(g)", operands.map { .parameter($0, .any) }) { b, v in b.binary(op, v[0], v[1]) }
            })
        case .reshape:
            return Checks(gradients: [
                GradientCase("reshape [B,2,3,2] → [B,12]", [.parameter(.example(2, 3, 2), .any)]) { b, x in b.unary(.reshape([12]), x[0]) },
                GradientCase("reshape [3,4] → [2,6]", [.parameter(.fixed(3, 4), .any)]) { b, x in b.unary(.reshape([2, 6]), x[0]) },
            ])
        case .channelsFirst, .channelsLast:
            return Checks(gradients: [GradientCase("\(op.mnemonic) [B,2,3,4]", [.parameter(.example(2, 3, 4), .any)]) { b, x in b.unary(op, x[0]) }],
                          value: { try $0.checkChannelMoves() })
        case .sumToChannels:
            return Checks(gradients: [
                GradientCase("sum_to_channels [B,2,3,4]", [.parameter(.example(2, 3, 4), .any)]) { b, x in b.unary(.sumToChannels, x[0]) },
                GradientCase("sum_to_channels [3,4]", [.parameter(.fixed(3, 4), .any)]) { b, x in b.unary(.sumToChannels, x[0]) },
            ])
        case .broadcast:
            let targets: [(Shape, Shape)] = [(scalar, B), (.fixed(4), B), (.perExample, B), (scalar, .fixed(4)), (.fixed(4), .example(2, 3, 4))]
            return Checks(gradients: targets.map { source, target in
                GradientCase("broadcast \(source) → \(target)", [.parameter(source, .any)]) { b, x in
                    b.add(.broadcast(target), [x[0]])
                }
            })
        }
    }

    // MARK: - Tests

    func testTheTableCoversEveryOp() throws {
        XCTAssertEqual(Set(Self.allOps.map(\.mnemonic)).count, Self.allOps.count, "an op is listed twice")
        for op in Self.allOps {
            let checks = Self.checks(for: op)
            XCTAssertTrue(!checks.gradients.isEmpty || checks.value != nil, "\(op.mnemonic) is not checked")
        }
        // The switch above cannot miss an op, but `allOps` could: it must name every op of the IR's
        // grammar (Grammar/ir.ebnf, which InspectTests keeps in step with the printer).
        let ir = try EBNF.load(TestPaths.packageRoot.appendingPathComponent("Grammar/ir.ebnf"))
        var mnemonics: Set<String> = []
        for rule in ["leaf_op", "unary_op", "binary_op", "conv_op", "operation"] {
            let terminals = try XCTUnwrap(ir.rules[rule], "Grammar/ir.ebnf has no rule '\(rule)'").terminals
            mnemonics.formUnion(terminals.map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0.first?.isLetter ?? false })
        }
        XCTAssertEqual(mnemonics.subtracting(Self.allOps.map(\.mnemonic)).sorted(), [], "ops of Grammar/ir.ebnf missing from allOps")
        XCTAssertEqual(Set(Self.allOps.map(\.mnemonic)).subtracting(mnemonics).sorted(), [], "ops missing from Grammar/ir.ebnf")
    }

    func testEveryOpsGradientMatchesFiniteDifferences() throws {
        var random = RandomSource(seed: 2024)
        var checked = 0
        for op in Self.allOps {
            for testCase in Self.checks(for: op).gradients {
                checked += try check(testCase, random: &random)
            }
        }
        XCTAssertGreaterThan(checked, 500, "too few gradient entries were compared")
    }

    func testEveryOpsValueCheck() throws {
        for op in Self.allOps {
            if let value = Self.checks(for: op).value { try value(self) }
        }
    }

    /// The whole pipeline: a tiny model in the shape of samples/mnist.vae (12-6-2-6-12), compiled with
    /// every pass, its parameter gradients against finite differences of its loss.
    func testCompiledModelGradientMatchesFiniteDifferences() throws {
        let source = TestModels.mlp(inputs: 12, hidden: 6, latents: 2, activation: "tanh",
                                    objective: "reconstruction: sum\nbeta: 1.5")
        let result = try TestModels.compile(source)
        let model = result.model
        let batch = Self.batch
        var random = RandomSource(seed: 99)
        let data = (0..<batch * 12).map { _ in Float(random.nextIndex(below: 2)) }
        let noise = random.normals(batch * model.latent.featureCount)
        var parameters = model.parameters.map { random.uniform($0.count, in: -0.6...0.6) }

        let outputs = [OutputName.loss] + model.parameters.map { OutputName.gradient($0.name) }
        func run(_ parameters: [[Float]]) -> GraphRun {
            let run = GraphRun(graph: result.program.graph, outputs: outputs, batch: batch)
            for (spec, values) in zip(model.parameters, parameters) { run.bind(.parameter(spec.name), values) }
            run.bind(.input(model.input.name), data)
            run.bind(.noise(model.latent.name), noise)
            run.executable.setHyper("beta", 1.5)
            run.executable.setHyper("1/batch", 1 / Float(batch))
            run.run()
            return run
        }
        let base = run(parameters)
        XCTAssertTrue(base.scalar(OutputName.loss).isFinite)
        var compared = 0
        for (index, spec) in model.parameters.enumerated() {
            let gradient = base.values(OutputName.gradient(spec.name))
            XCTAssertEqual(gradient.count, spec.count, spec.name)
            // A few random entries of every parameter tensor.
            for _ in 0..<4 {
                let j = random.nextIndex(below: spec.count)
                let x = parameters[index][j]
                let h = 1e-2 * max(1, abs(x))
                parameters[index][j] = x + h
                let up = run(parameters).scalar(OutputName.loss)
                parameters[index][j] = x - h
                let down = run(parameters).scalar(OutputName.loss)
                parameters[index][j] = x
                let numeric = (up - down) / (2 * h)
                assertClose(gradient[j], numeric, "\(spec.name)[\(j)]")
                compared += 1
            }
        }
        XCTAssertEqual(compared, 4 * model.parameters.count)
    }

    // MARK: - The harness

    /// Where a leaf's values are drawn from (away from kinks and inside domains).
    enum Domain {
        case any            // [−1.5, 1.5]
        case positive       // [0.5, 3]: log, sqrt, lgamma, digamma
        case awayFromZero   // ±[0.3, 1.5]: abs, relu, step, sign, a divisor
        case wide           // ±[0.05, 6]: cb_log_norm across its series and closed-form branches
        case large          // ±[1.5, 2]
        case small          // [−1, 1]

        func draw(_ random: inout RandomSource) -> Float {
            func signed(_ range: ClosedRange<Float>) -> Float {
                let v = random.uniform(1, in: range)[0]
                return random.nextIndex(below: 2) == 0 ? v : -v
            }
            switch self {
            case .any: return random.uniform(1, in: -1.5...1.5)[0]
            case .positive: return random.uniform(1, in: 0.5...3)[0]
            case .awayFromZero: return signed(0.3...1.5)
            case .wide: return signed(0.05...6)
            case .large: return signed(1.5...2)
            case .small: return random.uniform(1, in: -1...1)[0]
            }
        }
    }

    struct Leaf {
        enum Kind { case parameter, input, noise, hyper, constant }
        var kind: Kind
        var shape: Shape
        var domain: Domain
        static func parameter(_ s: Shape, _ d: Domain) -> Leaf { Leaf(kind: .parameter, shape: s, domain: d) }
        static func input(_ s: Shape, _ d: Domain) -> Leaf { Leaf(kind: .input, shape: s, domain: d) }
        static func noise(_ s: Shape, _ d: Domain) -> Leaf { Leaf(kind: .noise, shape: s, domain: d) }
        static func hyper(_ d: Domain) -> Leaf { Leaf(kind: .hyper, shape: .scalar, domain: d) }
        static func constant(_ d: Domain) -> Leaf { Leaf(kind: .constant, shape: .scalar, domain: d) }
    }

    struct GradientCase {
        let name: String
        let leaves: [Leaf]
        let apply: (inout GraphBuilder, [ValueID]) -> ValueID
        init(_ name: String, _ leaves: [Leaf], apply: @escaping (inout GraphBuilder, [ValueID]) -> ValueID) {
            self.name = name; self.leaves = leaves; self.apply = apply
        }
    }

    /// The graph of a case for given leaf values (constants are baked in, so the graph is rebuilt
    /// for every evaluation): outputs the loss and the gradient of every leaf.
    static func graph(_ testCase: GradientCase, values: [[Float]]) -> (graph: Graph, weightCount: Int) {
        var b = GraphBuilder()
        let leaves: [ValueID] = testCase.leaves.enumerated().map { i, leaf in
            switch leaf.kind {
            case .parameter: return b.add(.parameter("a\(i)"), shape: leaf.shape)
            case .input: return b.add(.input("a\(i)"), shape: leaf.shape)
            case .noise: return b.add(.noise("a\(i)"), shape: leaf.shape)
            case .hyper: return b.add(.hyper("a\(i)"))
            case .constant: return b.constant(values[i][0])
            }
        }
        let y = testCase.apply(&b, leaves)
        let w = b.add(.parameter("w"), shape: b.shape(y))
        var loss = b.binary(.multiply, w, y)
        if b.shape(loss).batched { loss = b.unary(.sumBatch, loss) }
        if !b.shape(loss).dims.isEmpty { loss = b.unary(.sumFeatures, loss) }
        let gradients = ReverseMode.gradients(of: loss, withRespectTo: leaves, in: &b)
        b.setOutput("loss", loss)
        for (i, g) in gradients.enumerated() { b.setOutput("grad\(i)", g) }
        return (b.graph, b.shape(y).elementCount(batch: batch))
    }

    /// Loss and gradients of a case; `optimised` runs the graph through the compiler's passes first.
    static func evaluate(_ testCase: GradientCase, values: [[Float]], weights: [Float], optimised: Bool) -> (loss: Float, gradients: [[Float]]) {
        var (graph, _) = graph(testCase, values: values)
        if optimised { for pass in Compiler.passes { graph = pass.run(graph) } }
        let outputs = ["loss"] + testCase.leaves.indices.map { "grad\($0)" }
        let run = GraphRun(graph: graph, outputs: outputs, batch: batch)
        run.bind(.parameter("w"), weights)
        for (i, leaf) in testCase.leaves.enumerated() {
            switch leaf.kind {
            case .parameter: run.bind(.parameter("a\(i)"), values[i])
            case .input: run.bind(.input("a\(i)"), values[i])
            case .noise: run.bind(.noise("a\(i)"), values[i])
            case .hyper: run.executable.setHyper("a\(i)", values[i][0])
            case .constant: break
            }
        }
        run.run()
        return (run.scalar("loss"), testCase.leaves.indices.map { run.values("grad\($0)") })
    }

    /// Compares every gradient entry of a case; returns how many were compared.
    func check(_ testCase: GradientCase, random: inout RandomSource) throws -> Int {
        var values = testCase.leaves.map { leaf in
            (0..<leaf.shape.elementCount(batch: Self.batch)).map { _ in leaf.domain.draw(&random) }
        }
        let weightCount = Self.graph(testCase, values: values).weightCount
        let weights = random.uniform(weightCount, in: -1...1)
        let analytic = Self.evaluate(testCase, values: values, weights: weights, optimised: false)
        let optimised = Self.evaluate(testCase, values: values, weights: weights, optimised: true)
        XCTAssertTrue(analytic.loss.isFinite, "\(testCase.name): loss \(analytic.loss)")
        var compared = 0
        for (i, leaf) in testCase.leaves.enumerated() {
            XCTAssertEqual(analytic.gradients[i].count, values[i].count, "\(testCase.name): gradient \(i) has the wrong size")
            guard analytic.gradients[i].count == values[i].count else { continue }
            for j in values[i].indices {
                let x = values[i][j]
                let h = 1e-2 * max(1, abs(x))
                values[i][j] = x + h
                let up = Self.evaluate(testCase, values: values, weights: weights, optimised: false).loss
                values[i][j] = x - h
                let down = Self.evaluate(testCase, values: values, weights: weights, optimised: false).loss
                values[i][j] = x
                let numeric = (up - down) / (2 * h)
                assertClose(analytic.gradients[i][j], numeric, "\(testCase.name): d/d\(leaf.kind)\(i)[\(j)] at \(x)")
                // The passes (stabilise, simplify, CSE, DCE) must not change a gradient.
                assertClose(optimised.gradients[i][j], analytic.gradients[i][j], "\(testCase.name): optimised d/d\(i)[\(j)]",
                            relative: 1e-5, absolute: 1e-6)
                compared += 1
            }
        }
        return compared
    }

    /// Float finite differences with a step of 1e-2: a 2% relative tolerance, plus an absolute 1e-3 for
    /// entries near zero (the loss's rounding noise divided by the step).
    func assertClose(_ actual: Float, _ expected: Float, _ what: String, relative: Float = 2e-2, absolute: Float = 1e-3,
                     file: StaticString = #filePath, line: UInt = #line) {
        let scale = max(abs(actual), abs(expected))
        XCTAssertTrue(abs(actual - expected) <= relative * scale + absolute,
                      "\(what): \(actual) vs \(expected)", file: file, line: line)
    }

    // MARK: - Values of the ops whose VJP is nil

    /// Runs one unary op on the interpreter (Float) for the given inputs.
    func evaluateUnary(_ op: Op, _ inputs: [Float]) -> [Float] {
        var b = GraphBuilder()
        let x = b.add(.parameter("x"), shape: .fixed(inputs.count))
        b.setOutput("y", b.unary(op, x))
        let run = GraphRun(graph: b.graph, outputs: ["y"], batch: 1)
        run.bind(.parameter("x"), inputs)
        run.run()
        return run.values("y")
    }

    func checkPositiveStepValues() throws {
        XCTAssertEqual(evaluateUnary(.positiveStep, [-2, -0.5, -0.0, 0, 1e-30, 0.5, 2]), [0, 0, 0, 0, 1, 1, 1])
    }

    func checkSignValues() throws {
        XCTAssertEqual(evaluateUnary(.sign, [-2, -1e-30, -0.0, 0, 1e-30, 3]), [-1, -1, 0, 0, 1, 1])
    }

    static let specialPoints: [Double] = [0.1, 0.5, 1, 1.5, 2.5, 5.9, 6, 7.3, 30, 250]

    /// ψ against a central difference of lgamma (in Double), and ψ(1) = −γ.
    func checkDigammaValues() throws {
        for x in Self.specialPoints {
            let h = 1e-5 * x
            let numeric = (Foundation.lgamma(x + h) - Foundation.lgamma(x - h)) / (2 * h)
            XCTAssertEqual(SpecialFunctions.digamma(x), numeric, accuracy: 1e-7 * max(1, abs(numeric)), "digamma(\(x))")
        }
        XCTAssertEqual(SpecialFunctions.digamma(1), -0.5772156649015329, accuracy: 1e-13)
        XCTAssertEqual(SpecialFunctions.digamma(0.5), -1.9635100260214235, accuracy: 1e-13)
        checkInterpreterMatches(.digamma, SpecialFunctions.digamma)
    }

    /// ψ₁ against a central difference of ψ (in Double), and ψ₁(1) = π²/6.
    func checkTrigammaValues() throws {
        for x in Self.specialPoints {
            let h = 1e-5 * x
            let numeric = (SpecialFunctions.digamma(x + h) - SpecialFunctions.digamma(x - h)) / (2 * h)
            XCTAssertEqual(SpecialFunctions.trigamma(x), numeric, accuracy: 1e-6 * max(1, abs(numeric)), "trigamma(\(x))")
        }
        XCTAssertEqual(SpecialFunctions.trigamma(1), Double.pi * Double.pi / 6, accuracy: 1e-13)
        XCTAssertEqual(SpecialFunctions.trigamma(0.5), Double.pi * Double.pi / 2, accuracy: 1e-12)
        checkInterpreterMatches(.trigamma, SpecialFunctions.trigamma)
    }

    /// The closed form log(l / tanh(l/2)) (log 2 at l = 0), at and around the series' switch-over.
    static func closedFormCB(_ l: Double) -> Double { l == 0 ? Foundation.log(2) : Foundation.log(l / Foundation.tanh(l / 2)) }
    static let cbPoints: [Double] = [0, 1e-3, -1e-3, 9e-3, -9e-3, 0.011, 0.5, -0.5, 5, -5, 30, -30]

    func checkCBLogNormalizerValues() throws {
        for l in Self.cbPoints {
            XCTAssertEqual(SpecialFunctions.cbLogNormalizer(l), Self.closedFormCB(l), accuracy: 1e-13, "cb_log_norm(\(l))")
        }
        // Far out, where tanh(l/2) is ±1: log C(l) → log |l|.
        XCTAssertEqual(SpecialFunctions.cbLogNormalizer(80), Foundation.log(80), accuracy: 1e-13)
        checkInterpreterMatches(.cbLogNormalizer, SpecialFunctions.cbLogNormalizer, at: Self.cbPoints)
    }

    /// The slope against a central difference of the closed form (in Double), away from 0 where the
    /// closed form is exact, and the series l/6 near 0.
    func checkCBLogNormalizerSlopeValues() throws {
        for l in Self.cbPoints where abs(l) >= 0.5 {
            let h = 1e-5 * max(1, abs(l))
            let numeric = (Self.closedFormCB(l + h) - Self.closedFormCB(l - h)) / (2 * h)
            XCTAssertEqual(SpecialFunctions.cbLogNormalizerSlope(l), numeric, accuracy: 1e-8, "cb_log_norm_slope(\(l))")
        }
        for l in [1e-3, -1e-3, 9e-3] {
            let h = 1e-4
            let numeric = (SpecialFunctions.cbLogNormalizer(l + h) - SpecialFunctions.cbLogNormalizer(l - h)) / (2 * h)
            XCTAssertEqual(SpecialFunctions.cbLogNormalizerSlope(l), numeric, accuracy: 1e-9, "cb_log_norm_slope(\(l))")
        }
        XCTAssertEqual(SpecialFunctions.cbLogNormalizerSlope(0), 0)
        checkInterpreterMatches(.cbLogNormalizerSlope, SpecialFunctions.cbLogNormalizerSlope, at: Self.cbPoints)
    }

    /// The interpreter's Float result is the Double reference rounded.
    func checkInterpreterMatches(_ op: Op, _ reference: (Double) -> Double, at points: [Double] = specialPoints) {
        let values = evaluateUnary(op, points.map { Float($0) })
        for (x, y) in zip(points, values) {
            let expected = reference(Double(Float(x)))
            XCTAssertEqual(Double(y), expected, accuracy: 1e-6 * max(1, abs(expected)), "\(op.mnemonic)(\(x)) on the interpreter")
        }
    }
}

extension GradientCheckTests {
    /// The channel moves put element (h, w, c) where PyTorch's [C,H,W] order puts it, and back.
    func checkChannelMoves() throws {
        var b = GraphBuilder()
        let x = b.add(.input("x"), shape: .example(2, 3, 4))          // [B,H,W,C]
        let first = b.unary(.channelsFirst, x)
        let back = b.unary(.channelsLast, first)
        b.setOutput("first", first)
        b.setOutput("back", back)
        let values = (0..<2 * 24).map(Float.init)
        let run = GraphRun(graph: b.graph, outputs: ["first", "back"], batch: 2)
        run.bind(.input("x"), values)
        run.run()
        let moved = run.values("first")
        for n in 0..<2 { for h in 0..<2 { for w in 0..<3 { for c in 0..<4 {
            XCTAssertEqual(moved[n * 24 + (c * 2 + h) * 3 + w], values[n * 24 + (h * 3 + w) * 4 + c], "[\(n),\(c),\(h),\(w)]")
        } } } }
        XCTAssertEqual(run.values("back"), values)
    }
}
