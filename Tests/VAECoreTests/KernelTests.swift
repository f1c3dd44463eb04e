import Foundation
import XCTest
@testable import VAECore

/// Issue 3: the kernel program (fused elementwise kernels, GEMMs in stages, one planned arena) against
/// the plain one-node-at-a-time interpreter on every sample; the same bits for one and two threads; the
/// vector math against Double-precision Foundation; the memory plan's liveness. No timings here: those
/// live in `vaec bench`.
final class KernelTests: XCTestCase {
    // MARK: Helpers

    /// An executable with every leaf bound to seeded values: parameters from the model's initialisation,
    /// data uniform in (0.05, 0.95) (inside every likelihood's support), standard normal noise.
    final class Bound {
        let executable: Executable
        let parameters: ParameterStore
        private var storage: [UnsafeMutablePointer<Float>] = []

        init(_ program: CompiledProgram, outputs: [String], batch: Int, threads: Int, seed: UInt64 = 7) {
            let model = program.model
            executable = Executable(graph: program.graph, outputs: outputs, batch: batch, threads: threads)
            var rng = RandomSource(seed: seed)
            parameters = ParameterStore(specs: model.parameters)
            parameters.initialize(random: &rng)
            for (i, spec) in model.parameters.enumerated() {
                if let id = executable.uses(.parameter(spec.name)) { executable.bind(id, to: parameters.pointers[i]) }
            }
            for (op, values) in [(Op.input(model.input.name), rng.uniform(batch * model.input.featureCount, in: 0.05...0.95)),
                                 (Op.noise(model.latent.name), rng.normals(batch * model.latent.featureCount))] {
                guard let id = executable.uses(op) else { continue }
                let p = UnsafeMutablePointer<Float>.allocate(capacity: max(values.count, 1))
                p.initialize(from: values, count: values.count)
                storage.append(p)
                executable.bind(id, to: p)
            }
            let hypers: [String: Float] = ["beta": 0.8, "1/batch": 1 / Float(batch), "batch": Float(batch),
                                           "recon_weight": 1.3, "capacity": 2]
            for (name, _) in executable.leaves(where: { if case .hyper(let n) = $0 { n } else { nil } }) {
                executable.setHyper(name, hypers[name] ?? 0.5)
            }
        }

        deinit { for p in storage { p.deallocate() } }

        func values(_ output: String) -> [Float] {
            guard let p = executable.value(output) else { return [] }
            return Array(UnsafeBufferPointer(start: p, count: executable.elementCount(of: output)))
        }

        /// Every output after the kernel program, then after the plain interpreter.
        func bothWays(_ outputs: [String]) -> (fused: [[Float]], plain: [[Float]]) {
            executable.run()
            let fused = outputs.map(values)
            executable.run(inspecting: { _, _ in })
            return (fused, outputs.map(values))
        }
    }

    static func trainOutputs(_ model: ModelSpec) -> [String] {
        [OutputName.loss, OutputName.reconstruction, OutputName.kl] + model.parameters.map { OutputName.gradient($0.name) }
    }

    /// |a − b| ≤ 1e-4·scale + 2e-4·|b|, where scale is the largest magnitude of the whole output: sums
    /// in a different order differ by a few float roundings of the terms, not of the (smaller) result.
    func assertAgree(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, what, file: file, line: line)
        let scale = b.reduce(Float(0)) { max($0, $1.isFinite ? abs($1) : 0) }
        var worst: (Int, Float, Float)?
        for (i, (x, y)) in zip(a, b).enumerated() {
            if x.isNaN && y.isNaN { continue }
            if x == y { continue }
            if !(abs(x - y) <= 1e-4 * scale + 2e-4 * abs(y)) { worst = worst ?? (i, x, y) }
        }
        if let (i, x, y) = worst { XCTFail("\(what)[\(i)]: fused \(x), plain \(y) (scale \(scale))", file: file, line: line) }
    }

    // MARK: Fused program = plain interpreter

    func testFusedProgramAgreesWithPlainInterpreterOnEverySample() throws {
        let samples = try TestPaths.files(in: TestPaths.samples, withExtension: "vae")
        XCTAssertGreaterThan(samples.count, 5)
        for url in samples {
            let result = try Compiler.compile(path: url.path)
            let program = result.program
            let outputs = Self.trainOutputs(program.model)
            let bound = Bound(program, outputs: outputs, batch: 3, threads: 1)
            // The program really is fused: fewer kernels than IR nodes with work, and some kernel runs a chain.
            let work = bound.executable.schedule.filter { program.graph[$0].op.kind != .leaf }.count
            XCTAssertLessThan(bound.executable.program.kernels.count, work, url.lastPathComponent)
            let (fused, plain) = bound.bothWays(outputs)
            for (name, (f, p)) in zip(outputs, zip(fused, plain)) {
                XCTAssertFalse(f.isEmpty, "\(url.lastPathComponent): \(name) missing")
                assertAgree(f, p, "\(url.lastPathComponent): \(name)")
            }
            XCTAssertTrue(fused[0][0].isFinite, "\(url.lastPathComponent): the loss is not finite")
        }
    }

    func testMNISTLikelihoodAndItsGradientAreOneKernel() throws {
        let program = try Compiler.compile(path: TestPaths.samples.appendingPathComponent("mnist.vae").path).program
        let e = Executable(graph: program.graph, outputs: Self.trainOutputs(program.model), batch: 8)
        let graph = program.graph
        let fused = e.program.kernels.compactMap { k -> FusedKernel? in if case .fused(let f) = k { f } else { nil } }
        // The kernel over the decoder's [B,784] logits computes softplus, its sigmoid gradient and both sums.
        let pixels = try XCTUnwrap(fused.first { $0.domain == .example(784) })
        let ops = Set(pixels.nodes.map { graph[$0].op.mnemonic })
        XCTAssertTrue(ops.isSuperset(of: ["softplus", "sigmoid", "sum_features", "sum_batch"]), "\(ops)")
        XCTAssertEqual(fused.filter { $0.domain == .example(784) }.count, 1)
        // Its only full-size store is the gradient the GEMMs need; the logits never reach memory.
        XCTAssertEqual(pixels.stores.count, 1)
        // The reparameterisation, the KL and the KL's gradient over [B,20] are one kernel too.
        let latent = try XCTUnwrap(fused.first { $0.domain == .example(20) })
        XCTAssertTrue(Set(latent.nodes.map { graph[$0].op.mnemonic }).isSuperset(of: ["exp", "sum_features"]))
    }

    // MARK: Threads

    /// Same seed, same bits, with one thread or two: the GEMMs split across the output or paired, the
    /// fused kernels cut into fixed row chunks whose column sums are added in chunk order, the Adam update
    /// into fixed pieces. Batch 96 makes every kind of split happen.
    func testOneAndTwoThreadsGiveTheSameBits() throws {
        let program = try Compiler.compile(path: TestPaths.samples.appendingPathComponent("mnist.vae").path).program
        let outputs = Self.trainOutputs(program.model)
        let one = Bound(program, outputs: outputs, batch: 96, threads: 1)
        let two = Bound(program, outputs: outputs, batch: 96, threads: 2)
        XCTAssertTrue(Self.splitsAFusedKernel(two.executable))
        XCTAssertTrue(two.executable.staging.stages.contains { $0.split })
        XCTAssertTrue(two.executable.staging.stages.contains { $0.kernels.count == 2 })
        // The [B,20] reparameterisation and KL kernel (one row chunk, no column sums) runs in ranges of rows.
        XCTAssertTrue(two.executable.staging.stages.contains { stage in
            guard stage.split, stage.kernels.count == 1, case .fused(let f) = two.executable.program.kernels[stage.kernels[0]]
            else { return false }
            return f.domain == .example(20) && f.columnSums.isEmpty
                && FusedKernel.chunking(rows: 96, columns: 20).count < two.executable.threads
        })
        // The [B,400] kernel summing the two heads' data gradients (it has a column sum: the bias
        // gradient) runs in row chunks beside the heads' weight gradients.
        XCTAssertTrue(two.executable.staging.stages.contains { stage in
            stage.kernels.count == 3 && stage.chunked.contains { k in
                if case .fused(let f) = two.executable.program.kernels[k] { !f.columnSums.isEmpty } else { false }
            }
        })
        one.executable.run()
        two.executable.run()
        for name in outputs {
            let a = one.values(name), b = two.values(name)
            XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), name)
        }
        // And Adam, one thread against two, on those gradients.
        let specs = program.model.parameters
        let adams = [Adam(spec: program.model.train.optimizer, parameters: specs),
                     Adam(spec: program.model.train.optimizer, parameters: specs)]
        adams[1].threads = 2
        let stores = [one.parameters, two.parameters]
        for (adam, bound) in zip(adams, [one, two]) {
            let gradients = specs.map { bound.executable.value(OutputName.gradient($0.name))! }
            for _ in 0..<2 { adam.update(parameters: bound.parameters, gradients: gradients) }
        }
        for i in specs.indices {
            XCTAssertEqual(stores[0].values(i).map(\.bitPattern), stores[1].values(i).map(\.bitPattern), specs[i].name)
        }
    }

    /// The ReLU masks (relu′ = step of the activation) are computed by the backward kernels that apply
    /// them, from the activations the next layers' products read anyway: no kernel stores one, and the
    /// forward kernels after x·W₁ᵀ and z·W₃ᵀ store only the activation (`Fusion.isRecomputedMask`).
    func testReluMasksAreRecomputedWhereTheyAreUsed() throws {
        let program = try Compiler.compile(path: TestPaths.samples.appendingPathComponent("mnist.vae").path).program
        let graph = program.graph
        let kernels = Fusion.lower(graph, outputs: Self.trainOutputs(program.model).compactMap { graph.output($0) }).kernels
        let masks = graph.nodes.indices.filter { graph[$0].op == .positiveStep }
        XCTAssertEqual(masks.count, 2)
        for mask in masks {
            XCTAssertEqual(graph[graph[mask].operands[0]].op, .relu, "the step of the activation, not of its input")
            let holder = kernels.compactMap { k -> FusedKernel? in if case .fused(let f) = k, f.nodes.contains(mask) { f } else { nil } }
            XCTAssertEqual(holder.count, 1)
            XCTAssertFalse(holder[0].stores.contains(mask), "%\(mask) is not stored")
            XCTAssertTrue(holder[0].nodes.contains { graph[$0].op == .multiply && graph[$0].operands.contains(mask) }, "with its use")
        }
        for kernel in kernels {
            guard case .fused(let f) = kernel, f.nodes.contains(where: { graph[$0].op == .relu }) else { continue }
            XCTAssertEqual(f.stores.count, 1, "a forward ReLU kernel stores the activation only")
        }
    }

    /// Row chunks of fused kernels: whole blocks covering every row once, at most about 16K elements each,
    /// near-equal, and an even number of them where the rows allow (two threads then get equal work).
    func testFusedKernelChunksAreNearEqualAndEvenInNumber() {
        for columns in [1, 7, 20, 255, 256, 400, 784, 3_000, 20_000] {
            for rows in [1, 2, 3, 45, 96, 128, 500, 1_000] {
                let h = FusedKernel.blockRows(columns: columns)
                let (perChunk, count) = FusedKernel.chunking(rows: rows, columns: columns)
                let what = "rows \(rows), columns \(columns)"
                XCTAssertEqual(perChunk % h, 0, what)
                XCTAssertTrue(count >= 1 && perChunk * count >= rows && perChunk * (count - 1) < rows, what)
                XCTAssertLessThanOrEqual(perChunk * columns, max(16_384, h * columns), what)
                // Near-equal: the last chunk is short by less than a block row per chunk.
                XCTAssertLessThan(perChunk * count - rows, count * h, what)
            }
        }
        // The mnist step's kernels: the likelihood [128, 784] was 6 × 20 + 8 rows, the hidden layers'
        // [128, 400] 3 × 40 + 8; both now split evenly.
        XCTAssertTrue(FusedKernel.chunking(rows: 128, columns: 784) == (16, 8))
        XCTAssertTrue(FusedKernel.chunking(rows: 128, columns: 400) == (32, 4))
        XCTAssertTrue(FusedKernel.chunking(rows: 96, columns: 784) == (16, 6))
    }

    /// Odd sizes (edge tiles in every GEMM piece, a partial last row chunk, rows shorter than a block)
    /// and three threads: still the same bits as one thread.
    func testOddShapesGiveTheSameBitsOnOneTwoAndThreeThreads() throws {
        let source = TestModels.mlp(inputs: 701, hidden: 150, latents: 7, activation: "tanh")
        let program = try TestModels.compile(source).program
        let outputs = Self.trainOutputs(program.model)
        let reference = Bound(program, outputs: outputs, batch: 101, threads: 1)
        reference.executable.run()
        for threads in [2, 3] {
            let other = Bound(program, outputs: outputs, batch: 101, threads: threads)
            XCTAssertTrue(Self.splitsAFusedKernel(other.executable), "\(threads) threads")
            other.executable.run()
            for name in outputs {
                XCTAssertEqual(reference.values(name).map(\.bitPattern), other.values(name).map(\.bitPattern), "\(name), \(threads) threads")
            }
        }
    }

    /// Direct blocks (inputs read in place, results written straight to their stores: see
    /// FusedKernelRunner) against the plain interpreter, at batches where they happen for one-row
    /// blocks ([B,400], [B,784]) and for multi-row ones (batch 16: a [B,20] block is 16 rows = 20
    /// vectors, with per-row bias inputs that must not be read in place) and where they don't (batch 5).
    func testDirectBlocksAgreeWithThePlainInterpreter() throws {
        let program = try Compiler.compile(path: TestPaths.samples.appendingPathComponent("mnist.vae").path).program
        let outputs = Self.trainOutputs(program.model)
        for batch in [16, 5] {
            let bound = Bound(program, outputs: outputs, batch: batch, threads: 2)
            let kernels = bound.executable.program.kernels.compactMap { k -> FusedKernel? in if case .fused(let f) = k { f } else { nil } }
            let forms = kernels.map { f in
                FusedKernelRunner.directForms(f, inputs: f.inputs.map { _ in UnsafePointer(bitPattern: 64)! },
                                              stores: f.stores.map { _ in UnsafeMutablePointer(bitPattern: 1 << 20)! },
                                              elements: 1)
            }
            XCTAssertTrue(forms.joined().contains { $0.inPlace }, "no load is read in place")
            XCTAssertTrue(forms.joined().contains { $0.done }, "no store is folded")
            let (fused, plain) = bound.bothWays(outputs)
            for (name, (f, p)) in zip(outputs, zip(fused, plain)) { assertAgree(f, p, "batch \(batch): \(name)") }
        }
    }

    /// The fused kernels' plain-data op codes (`ElementwiseFunction`, translated from the IR's `Op` when a
    /// runner is bound) run the function of the op they stand for: each one's block loop against the
    /// vector functions the interpreter uses (`VectorMath.unary`/`binary`, picked by the `Op` itself),
    /// over 3 whole vectors and a partial one of signed values (and the special functions on the lanes
    /// of the block only).
    func testElementwiseOpCodesRunTheirOp() {
        let n = 53, vectors = 4
        var x = [Float](repeating: 0, count: 64), y = x
        for i in 0..<64 {
            x[i] = Float(i % 3 == 0 ? -1 : 1) * (0.05 + 0.071 * Float(i))
            y[i] = Float(i % 4 == 1 ? -1 : 1) * (1.9 - 0.043 * Float(i))
        }
        for function in ElementwiseFunction.allCases {
            let op = function.op
            XCTAssertEqual(ElementwiseFunction(op), function, op.mnemonic)
            var expected = [Float](repeating: 0, count: 64), actual = expected
            switch op.kind {
            case .unary:
                for v in 0..<vectors {
                    let r = VectorMath.unary(op, SIMD16(x[(16 * v)..<(16 * v + 16)]))
                    for j in 0..<16 { expected[16 * v + j] = r[j] }
                }
                x.withUnsafeBufferPointer { s in actual.withUnsafeMutableBufferPointer { d in
                    FusedKernelRunner.unary(function, d.baseAddress!, s.baseAddress!, vectors, n)
                } }
            case .binary:
                for v in 0..<vectors {
                    let r = VectorMath.binary(op, SIMD16(x[(16 * v)..<(16 * v + 16)]), SIMD16(y[(16 * v)..<(16 * v + 16)]))
                    for j in 0..<16 { expected[16 * v + j] = r[j] }
                }
                x.withUnsafeBufferPointer { a in y.withUnsafeBufferPointer { b in actual.withUnsafeMutableBufferPointer { d in
                    FusedKernelRunner.binary(function, a.baseAddress!, b.baseAddress!, d.baseAddress!, vectors)
                } } }
            default:
                XCTFail("\(op.mnemonic) is not elementwise")
            }
            XCTAssertEqual(actual.prefix(n).map(\.bitPattern), expected.prefix(n).map(\.bitPattern), op.mnemonic)
        }
    }

    static func splitsAFusedKernel(_ e: Executable) -> Bool {
        e.staging.stages.contains { stage in
            stage.split && stage.kernels.contains { if case .fused = e.program.kernels[$0] { true } else { false } }
        }
    }

    /// The vector Adam gives the scalar formula's bits (same operations, same order, lane by lane).
    func testAdamMatchesTheScalarFormula() {
        let specs = [ParameterSpec(name: "w", dims: [37], initialization: .constant(0))]
        let adam = Adam(spec: OptimizerSpec(), parameters: specs)
        let store = ParameterStore(specs: specs)
        var rng = RandomSource(seed: 3)
        let p0 = rng.normals(37), g = rng.normals(37)
        store.set(0, p0)
        let gradient = UnsafeMutablePointer<Float>.allocate(capacity: 37)
        defer { gradient.deallocate() }
        gradient.initialize(from: g, count: 37)
        adam.update(parameters: store, gradients: [gradient])
        // Step 1 by hand: m = 0.1g, v = 0.001g², p −= (lr·√0.001/0.1)·m / (√v + ε·√0.001), the two
        // constants rounded once from Double. 37 values: two vectors and a scalar tail of 5.
        let b1: Float = 0.9, b2: Float = 0.999
        let root = (1 - 0.999).squareRoot()
        let stepSize = Float(1e-3 * root / (1 - 0.9)), epsilon = Float(1e-8 * root)
        for i in 0..<37 {
            let m = b1 * 0 + (1 - b1) * g[i], v = b2 * 0 + (1 - b2) * g[i] * g[i]
            let expected = p0[i] - stepSize * m / (v.squareRoot() + epsilon)
            XCTAssertEqual(store.values(0)[i].bitPattern, expected.bitPattern, "value \(i)")
        }
    }

    // MARK: Vector math

    /// Error of a Float result in units in the last place of the Double reference.
    static func ulps(_ f: Float, _ reference: Double) -> Double {
        if reference.isNaN { return f.isNaN ? 0 : .infinity }
        if reference.isInfinite || Float(reference).isInfinite { return Double(f) == Double(Float(reference)) ? 0 : .infinity }
        let r = Float(reference)
        let ulp = Double(max(r.magnitude.ulp, Float.leastNonzeroMagnitude))
        return abs(Double(f) - reference) / ulp
    }

    func worstError(_ f: (SIMD16<Float>) -> SIMD16<Float>, _ reference: (Double) -> Double, _ xs: [Float]) -> (Double, Float) {
        var worst = (0.0, Float(0))
        var i = 0
        while i < xs.count {
            var v = SIMD16<Float>(repeating: 0)
            let n = min(16, xs.count - i)
            for j in 0..<n { v[j] = xs[i + j] }
            let y = f(v)
            for j in 0..<n {
                let e = Self.ulps(y[j], reference(Double(xs[i + j])))
                if e > worst.0 { worst = (e, xs[i + j]) }
            }
            i += 16
        }
        return worst
    }

    /// A dense sweep of [lo, hi] plus the given extra points.
    static func sweep(_ lo: Float, _ hi: Float, count: Int, extra: [Float] = []) -> [Float] {
        (0...count).map { lo + (hi - lo) * Float($0) / Float(count) } + extra
    }

    func testExpIsWithinOneUlpFromUnderflowToOverflow() {
        let xs = Self.sweep(-104, 89, count: 200_000, extra: [0, -0.0, 88.72, 88.7228, -87.33, -100, -103.9, 1e-8, -1e-8])
        let (error, at) = worstError(VectorMath.exp, Foundation.exp, xs)
        XCTAssertLessThanOrEqual(error, 1, "exp is \(error) ulp off at \(at)")
        let special = VectorMath.exp(SIMD16<Float>([.infinity, -.infinity, .nan, 89, 88.7228, -104, -200, 0,
                                                    -100, 1, -1, 10, -10, 20, -87, 88]))
        XCTAssertEqual(special[0], .infinity)
        XCTAssertEqual(special[1], 0)
        XCTAssertTrue(special[2].isNaN)
        XCTAssertEqual(special[3], .infinity)
        XCTAssertTrue(special[4].isFinite && special[4] > 3.4e38)
        XCTAssertEqual(special[5], 0)
        XCTAssertEqual(special[6], 0)
        XCTAssertEqual(special[7], 1)
        XCTAssertTrue(special[8] > 0 && special[8] < Float.leastNormalMagnitude, "exp(−100) is subnormal, got \(special[8])")
    }

    func testLogIsWithinOneUlpOverEveryBinadeIncludingSubnormals() {
        var xs: [Float] = []
        for k in -149...127 {
            for t in stride(from: Float(1), to: 2, by: 1 / 64) { xs.append(Float(sign: .plus, exponent: k, significand: t)) }
        }
        xs += Self.sweep(0.5, 2, count: 100_000)
        let (error, at) = worstError(VectorMath.log, Foundation.log, xs.filter { $0.isFinite && $0 > 0 })
        XCTAssertLessThanOrEqual(error, 1, "log is \(error) ulp off at \(at)")
        let special = VectorMath.log(SIMD16<Float>([0, -0.0, -1, .infinity, -.infinity, .nan, 1, Float.leastNonzeroMagnitude,
                                                    Float.greatestFiniteMagnitude, 2, 0.5, 10, 1e-30, 1e30, 3, 4]))
        XCTAssertEqual(special[0], -.infinity)
        XCTAssertEqual(special[1], -.infinity)
        XCTAssertTrue(special[2].isNaN)
        XCTAssertEqual(special[3], .infinity)
        XCTAssertTrue(special[4].isNaN)
        XCTAssertTrue(special[5].isNaN)
        XCTAssertEqual(special[6], 0)
        XCTAssertEqual(special[7], Float(Foundation.log(Double(Float.leastNonzeroMagnitude))), accuracy: 1e-5)
    }

    func testSoftplusSigmoidAndTanhAgainstDouble() {
        let xs = Self.sweep(-120, 120, count: 200_000, extra: [0, -0.0, 1e-20, -1e-20, 88, -88, 100, -100])
        func softplus(_ x: Double) -> Double { max(x, 0) + Foundation.log1p(Foundation.exp(-abs(x))) }
        func sigmoid(_ x: Double) -> Double { 1 / (1 + Foundation.exp(-x)) }
        let (sp, spAt) = worstError(VectorMath.softplus, softplus, xs)
        XCTAssertLessThanOrEqual(sp, 2, "softplus is \(sp) ulp off at \(spAt)")
        let (sg, sgAt) = worstError(VectorMath.sigmoid, sigmoid, xs)
        XCTAssertLessThanOrEqual(sg, 2.5, "sigmoid is \(sg) ulp off at \(sgAt)")
        let (th, thAt) = worstError(VectorMath.tanh, Foundation.tanh, xs)
        XCTAssertLessThanOrEqual(th, 2, "tanh is \(th) ulp off at \(thAt)")
        let special = SIMD16<Float>([.infinity, -.infinity, .nan, 0, -0.0, 100, -100, 1e-30, 0, 0, 0, 0, 0, 0, 0, 0])
        let s = VectorMath.softplus(special), g = VectorMath.sigmoid(special), t = VectorMath.tanh(special)
        XCTAssertEqual(s[0], .infinity); XCTAssertEqual(s[1], 0); XCTAssertTrue(s[2].isNaN)
        XCTAssertEqual(s[3], Float(Foundation.log(2.0)))
        XCTAssertEqual(g[0], 1); XCTAssertEqual(g[1], 0); XCTAssertTrue(g[2].isNaN); XCTAssertEqual(g[3], 0.5)
        XCTAssertEqual(t[0], 1); XCTAssertEqual(t[1], -1); XCTAssertTrue(t[2].isNaN)
        XCTAssertEqual(t[3].bitPattern, Float(0).bitPattern); XCTAssertEqual(t[4].bitPattern, Float(-0.0).bitPattern)
        XCTAssertEqual(t[7], 1e-30)
    }

    /// jax#777: an approximate reciprocal made σ'(x) = σ(1−σ) NaN at large |x|. Through the compiled
    /// gradient of Σσ(x), fused and plain: finite, and the IR's formula σ·(1−σ) evaluated in Float from the
    /// correctly rounded σ (so σ'(20) is 0: σ(20) rounds to 1 in Float, as in any float32 framework).
    func testSigmoidGradientAtPlusMinus100IsFiniteAndExact() {
        var b = GraphBuilder()
        let x = b.add(.parameter("x"), name: "x", shape: .fixed(6))
        let loss = b.add(.sumFeatures, [b.unary(.sigmoid, x)])
        let gradient = ReverseMode.gradients(of: loss, withRespectTo: [x], in: &b)[0]
        b.setOutput("loss", loss)
        b.setOutput("g", gradient)
        let e = Executable(graph: b.graph, outputs: ["loss", "g"], batch: 1)
        let points: [Float] = [100, -100, 0, 20, -20, 3]
        let p = UnsafeMutablePointer<Float>.allocate(capacity: 6)
        defer { p.deallocate() }
        p.initialize(from: points, count: 6)
        e.bind(e.uses(.parameter("x"))!, to: p)
        for plain in [false, true] {
            if plain { e.run(inspecting: { _, _ in }) } else { e.run() }
            let g = Array(UnsafeBufferPointer(start: e.value("g")!, count: 6))
            for (x, gx) in zip(points, g) {
                let s = Float(1 / (1 + Foundation.exp(-Double(x))))
                let expected = s * (1 - s)
                XCTAssertTrue(gx.isFinite, "σ'(\(x)) = \(gx)")
                XCTAssertLessThanOrEqual(Self.ulps(gx, Double(expected)), 2, "σ'(\(x)) = \(gx), expected \(expected)")
            }
        }
    }

    func testAllSquaresFiniteFindsEveryBadValueWherever() {
        let n = 37
        var values = [Float](repeating: 1.5, count: n)
        XCTAssertTrue(VectorMath.allSquaresFinite(values, n))
        // NaN, the infinities, and values whose square overflows (|x| > 1.84e19).
        for bad: Float in [.nan, .infinity, -.infinity, 1.9e19, -1.9e19, .greatestFiniteMagnitude] {
            for position in [0, 15, 16, 31, 32, 36] {
                values[position] = bad
                XCTAssertFalse(VectorMath.allSquaresFinite(values, n), "\(bad) at \(position)")
                values[position] = 1.5
            }
        }
        values[36] = .nan
        XCTAssertTrue(VectorMath.allSquaresFinite(values, 36), "only the first 36 are looked at")
        XCTAssertTrue(VectorMath.allSquaresFinite([1.8e19, -1.8e19, 0, -0.0], 4))
    }

    // MARK: Memory plan

    func testPlannedBuffersNeverOverlapWhileBothAreLive() throws {
        let program = try Compiler.compile(path: TestPaths.samples.appendingPathComponent("mnist.vae").path).program
        for threads in [1, 2] {
            let e = Executable(graph: program.graph, outputs: Self.trainOutputs(program.model), batch: 16, threads: threads)
            let graph = program.graph, stageOf = e.staging.stageOfKernel
            var lastRead: [ValueID: Int] = [:]
            var written: [ValueID: Int] = [:]
            for (k, kernel) in e.program.kernels.enumerated() {
                for v in kernel.reads { lastRead[v] = max(lastRead[v] ?? 0, stageOf[k]) }
                for v in kernel.results { written[v] = stageOf[k] }
            }
            let placed = e.plan.arena.map { v, offset in
                (v, offset, offset + graph[v].shape.elementCount(batch: 16), written[v]!, lastRead[v] ?? written[v]!)
            }
            XCTAssertGreaterThan(placed.count, 10)
            for a in placed {
                for b in placed where a.0 < b.0 {
                    let liveTogether = a.3 <= b.4 && b.3 <= a.4
                    let share = a.1 < b.2 && b.1 < a.2
                    XCTAssertFalse(liveTogether && share, "%\(a.0) and %\(b.0) share memory while both are live")
                    // Nor does a value take memory in the stage right after its last reader (`MemoryPlan`).
                    let adjacent = a.3 <= b.4 + 1 && b.3 <= a.4 + 1
                    XCTAssertFalse(adjacent && share, "%\(a.0) and %\(b.0) share memory in consecutive stages")
                }
            }
            // Reuse happened: the arena is smaller than one buffer per value.
            let total = placed.reduce(0) { $0 + BufferPlan.aligned($1.2 - $1.1) }
            XCTAssertLessThan(e.plan.arenaSize, total)
        }
    }

    /// Executables share one arena for their intermediates: a run after another executable grew (moved)
    /// it, and runs on two threads at once (one of them on a private arena), give the same values.
    func testExecutablesSharingTheArenaGiveTheSameValues() throws {
        let program = try Compiler.compile(path: TestPaths.samples.appendingPathComponent("mnist.vae").path).program
        let outputs = Self.trainOutputs(program.model)
        let small = Bound(program, outputs: outputs, batch: 2, threads: 1)
        small.executable.run()
        let before = outputs.map(small.values)
        let large = Bound(program, outputs: outputs, batch: 24, threads: 1, seed: 9)
        large.executable.run()                 // needs a larger arena: the shared one moves
        let largeValues = outputs.map(large.values)
        small.executable.run()
        XCTAssertEqual(outputs.map(small.values).map { $0.map(\.bitPattern) }, before.map { $0.map(\.bitPattern) })
        // Both at once, from two threads.
        let group = DispatchGroup()
        for bound in [small, large] {
            DispatchQueue.global().async(group: group) { for _ in 0..<3 { bound.executable.run() } }
        }
        group.wait()
        XCTAssertEqual(outputs.map(small.values).map { $0.map(\.bitPattern) }, before.map { $0.map(\.bitPattern) })
        XCTAssertEqual(outputs.map(large.values).map { $0.map(\.bitPattern) }, largeValues.map { $0.map(\.bitPattern) })
    }

    /// The plain interpreter still reports every scheduled node's value (the NaN guard and
    /// `vaec grad --values` rely on it), with the same outputs as the kernel program.
    func testInspectingRunVisitsEveryNode() throws {
        let program = try Compiler.compile(path: TestPaths.samples.appendingPathComponent("mnist.vae").path).program
        let bound = Bound(program, outputs: [OutputName.loss], batch: 2, threads: 1)
        var seen: [ValueID] = []
        bound.executable.run(inspecting: { id, values in
            seen.append(id)
            XCTAssertEqual(values.count, program.graph[id].shape.elementCount(batch: 2))
        })
        XCTAssertEqual(seen, bound.executable.schedule)
        let plain = bound.values(OutputName.loss)
        bound.executable.run()
        assertAgree(bound.values(OutputName.loss), plain, "loss")
    }
}
