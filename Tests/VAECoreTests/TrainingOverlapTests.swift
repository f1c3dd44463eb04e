import Foundation
import XCTest
@testable import VAECore

/// The two cheaper halves of a training step's tail: Adam's one-division formula, held to the textbook
/// formula in Double, and the next batch prepared during the update, held to preparing every batch in
/// place (same buffers, same generator state, same training bits).
final class TrainingOverlapTests: XCTestCase {
    // MARK: Adam against the textbook formula

    /// Each of three updates, from parameters set to 0 (so the stored value is the step itself, not
    /// rounded to a parameter's ulp), against p − lr·m̂ / (√v̂ + ε) with m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ)
    /// in Double on the moments Adam stored. Gradients span 1e-9 (where ε dominates the denominator)
    /// to 1e3, both signs and 0, over two vectors and a scalar tail.
    func testAnUpdateIsTheTextbookFormulaWithinAFewUlp() {
        let scales: [Float] = [1e-9, 1e-8, 1e-7, 1e-5, 1e-3, 0.1, 1, 30, 1e3]
        let n = 16 * 7 + 5
        let specs = [ParameterSpec(name: "w", dims: [n], initialization: .constant(0))]
        let spec = OptimizerSpec()
        let adam = Adam(spec: spec, parameters: specs)
        let store = ParameterStore(specs: specs)
        let gradient = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { gradient.deallocate() }
        var rng = RandomSource(seed: 21)
        var worst = 0.0
        for t in 1...3 {
            let g = rng.normals(n).enumerated().map { i, x in i % 11 == 10 ? 0 : x * scales[i % scales.count] }
            gradient.update(from: g, count: n)
            store.set(0, [Float](repeating: 0, count: n))
            let (_, m, v) = adam.state
            let m0 = m.values(0), v0 = v.values(0)
            adam.update(parameters: store, gradients: [gradient])
            let m1 = m.values(0), v1 = v.values(0), p1 = store.values(0)
            let correction1 = 1 - Foundation.pow(spec.beta1, Double(t)), correction2 = 1 - Foundation.pow(spec.beta2, Double(t))
            for i in 0..<n {
                if t == 1 {
                    // From zero moments nothing cancels: m = (1−β1)g and v = (1−β2)g² to rounding.
                    XCTAssertEqual(m0[i], 0); XCTAssertEqual(v0[i], 0)
                    XCTAssertLessThanOrEqual(KernelTests.ulps(m1[i], (1 - Double(Float(spec.beta1))) * Double(g[i])), 1, "m[\(i)]")
                    XCTAssertLessThanOrEqual(KernelTests.ulps(v1[i], (1 - Double(Float(spec.beta2))) * Double(g[i]) * Double(g[i])), 2, "v[\(i)]")
                }
                let mHat = Double(m1[i]) / correction1, vHat = Double(v1[i]) / correction2
                let expected = 0 - spec.learningRate * mHat / (vHat.squareRoot() + spec.epsilon)
                let error = KernelTests.ulps(p1[i], expected)
                worst = max(worst, error)
                XCTAssertLessThanOrEqual(error, 3, "step \(t), value \(i): g \(g[i]), got \(p1[i]), expected \(expected)")
            }
        }
        // The steps were not all zero: the comparison saw real updates.
        XCTAssertGreaterThan(store.values(0).filter { $0 != 0 }.count, n / 2)
        print("Adam against the textbook formula in Double: worst \(worst) ulp")
    }

    // MARK: The batch loader

    static func dataset(count: Int = 40, features: Int = 6) -> Dataset {
        var rng = RandomSource(seed: 4)
        return Dataset(path: "memory", count: count, features: features, values: rng.uniform(count * features, in: 0...1))
    }

    /// What preparing a batch in place gives: the rows copied, then the next normals of `random`.
    static func expected(_ data: Dataset, rows: [Int], random: inout RandomSource, noise: Int) -> (input: [Float], noise: [Float]) {
        let input = rows.flatMap { data.values[$0 * data.features..<($0 + 1) * data.features] }
        return (input, random.normals(noise))
    }

    static func contents(_ loader: BatchLoader) -> (input: [Float], noise: [Float]) {
        (Array(UnsafeBufferPointer(start: loader.input, count: loader.batch * loader.data.features)),
         Array(UnsafeBufferPointer(start: loader.noise, count: loader.noiseCount)))
    }

    /// Runs a prefetch's tasks as the update's section would.
    static func runTasks(_ tasks: Adam.SideTasks) {
        for task in (0..<tasks.count).reversed() { tasks.body(task) }
    }

    /// A prefetched batch, loaded with the rows and generator it was prepared for, is the batch a plain
    /// load makes, and leaves the generator where the plain load's draws do.
    func testALoadOfThePrefetchedBatchEqualsALoadInPlace() {
        let data = Self.dataset()
        let loader = BatchLoader(data: data, batch: 5, noisePerExample: 3)
        var random = RandomSource(seed: 9)
        _ = random.next()
        var reference = random
        let rows = [7, 3, 39, 0, 12]
        Self.runTasks(loader.prefetch(rows[...], after: random))
        XCTAssertEqual(random, reference, "a prefetch leaves the run's generator alone")
        loader.load(rows[...], random: &random)
        let want = Self.expected(data, rows: rows, random: &reference, noise: 15)
        let got = Self.contents(loader)
        XCTAssertEqual(got.input, want.input)
        XCTAssertEqual(got.noise.map(\.bitPattern), want.noise.map(\.bitPattern))
        XCTAssertEqual(random, reference)
        XCTAssertFalse(want.noise.allSatisfy { $0 == 0 })
    }

    /// Whenever the prefetch does not fit the load (another draw came in between, other rows, new data,
    /// the tasks never ran), the load prepares the batch in place: nothing stale is used.
    func testALoadThatDoesNotFitThePrefetchPreparesTheBatchInPlace() {
        let data = Self.dataset()
        let rows = [1, 2, 3, 4, 5], other = [1, 2, 3, 4, 6]
        enum Mismatch: CaseIterable { case drawInBetween, otherRows, newData, tasksNotRun }
        for mismatch in Mismatch.allCases {
            let loader = BatchLoader(data: data, batch: 5, noisePerExample: 2)
            var random = RandomSource(seed: 2)
            let tasks = loader.prefetch(rows[...], after: random)
            if mismatch != .tasksNotRun { Self.runTasks(tasks) }
            if mismatch == .drawInBetween { _ = random.permutation(40) }
            var newData = data
            if mismatch == .newData {
                newData = Dataset(path: "memory", count: 40, features: 6, values: data.values.map { 1 - $0 })
                loader.data = newData
            }
            var reference = random
            let used = mismatch == .otherRows ? other : rows
            loader.load(used[...], random: &random)
            let want = Self.expected(newData, rows: used, random: &reference, noise: 10)
            let got = Self.contents(loader)
            XCTAssertEqual(got.input, want.input, "\(mismatch)")
            XCTAssertEqual(got.noise.map(\.bitPattern), want.noise.map(\.bitPattern), "\(mismatch)")
            XCTAssertEqual(random, reference, "\(mismatch)")
        }
    }

    // MARK: Training with prefetched batches

    /// The trainer against a plain loop written out here: shuffle each epoch, gather each batch and draw
    /// its noise in place, run the step, Adam; no prefetch. One and two threads, constant data and
    /// dynamic binarisation (a new draw of the data each epoch), and a run stopped and continued
    /// mid-epoch: the same parameter and moment bits, and at every step boundary (where a checkpoint
    /// would save it) the generator state the plain loop has there.
    func testTrainingWithPrefetchedBatchesGivesThePlainLoopsBits() throws {
        for binarize in ["", "binarize: dynamic"] {
            let program = try TestModels.compile(TestModels.mlp(inputs: 8, hidden: 12, latents: 3, activation: "tanh",
                                                                train: "batch: 16\nepochs: 3\nseed: 7\n\(binarize)")).program
            var rng = RandomSource(seed: 5)
            let data = Dataset(path: "memory", count: 72, features: 8, values: rng.uniform(72 * 8, in: 0...1))
            let plain = try PlainLoop(program, data: data, epochs: 3)
            XCTAssertEqual(plain.statesBeforeEachStep.count, 12, "4 steps per epoch (72 examples, batch 16)")
            for threads in [1, 2] {
                var options = TrainOptions()
                options.threads = threads
                let trainer = try Trainer(program: program, train: data, test: nil, options: options)
                var seen: [RandomSource] = []
                // Stop once at step 6 (mid-epoch, a prefetch armed for the next batch), then go on.
                var stoppedOnce = false
                let shouldStop: () -> Bool = {
                    seen.append(trainer.random)
                    if trainer.step == 6 && !stoppedOnce { stoppedOnce = true; return true }
                    return false
                }
                XCTAssertEqual(try trainer.train(shouldStop: shouldStop), .stopped)
                seen.removeLast()   // the poll that stopped is polled again on the way on
                XCTAssertEqual(try trainer.train(shouldStop: shouldStop), .finished)
                let label = "\(binarize.isEmpty ? "constant data" : binarize), \(threads) thread(s)"
                XCTAssertEqual(trainer.step, 12, label)
                XCTAssertEqual(seen.map(\.stateWords), plain.statesBeforeEachStep.map(\.stateWords), label)
                XCTAssertEqual(trainer.random, plain.random, label)
                let (_, m, v) = trainer.optimizer.state, (_, plainM, plainV) = plain.optimizer.state
                for index in program.model.parameters.indices {
                    let name = program.model.parameters[index].name
                    XCTAssertEqual(trainer.parameters.values(index).map(\.bitPattern), plain.parameters.values(index).map(\.bitPattern), "\(label): \(name)")
                    XCTAssertEqual(m.values(index).map(\.bitPattern), plainM.values(index).map(\.bitPattern), "\(label): m of \(name)")
                    XCTAssertEqual(v.values(index).map(\.bitPattern), plainV.values(index).map(\.bitPattern), "\(label): v of \(name)")
                }
            }
        }
    }

    /// The training recipe as it ran before prefetching, on one thread.
    final class PlainLoop {
        let parameters: ParameterStore
        let optimizer: Adam
        var random: RandomSource
        /// The generator where the trainer's `shouldStop` poll sees it before each step: for the first
        /// step of an epoch that is before the epoch's shuffle.
        var statesBeforeEachStep: [RandomSource] = []

        init(_ program: CompiledProgram, data source: Dataset, epochs: Int) throws {
            let model = program.model
            let batch = model.train.batch, latent = model.latent.featureCount
            random = RandomSource(seed: model.train.seed)
            parameters = ParameterStore(specs: model.parameters)
            parameters.initialize(random: &random)
            optimizer = Adam(spec: model.train.optimizer, parameters: model.parameters)
            let outputs = [OutputName.loss, OutputName.reconstruction, OutputName.kl] + model.parameters.map { OutputName.gradient($0.name) }
            let step = Executable(graph: program.graph, outputs: outputs, batch: batch, threads: 1)
            let input = UnsafeMutablePointer<Float>.allocate(capacity: batch * source.features)
            let noise = UnsafeMutablePointer<Float>.allocate(capacity: batch * latent)
            defer { input.deallocate(); noise.deallocate() }
            for (index, spec) in model.parameters.enumerated() {
                if let id = step.uses(.parameter(spec.name)) { step.bind(id, to: parameters.pointers[index]) }
            }
            if let id = step.uses(.input(model.input.name)) { step.bind(id, to: input) }
            if let id = step.uses(.noise(model.latent.name)) { step.bind(id, to: noise) }
            let gradients = model.parameters.map { step.value(OutputName.gradient($0.name))! }
            let controller = BetaController(schedule: model.objective.beta)
            let steps = source.count / batch
            for epoch in 0..<epochs {
                let data = source.binarized(model.train.binarize, draw: Trainer.drawSeed(model.train.seed, epoch: epoch))
                statesBeforeEachStep.append(random)
                let order = random.permutation(data.count)
                for b in 0..<steps {
                    if b > 0 { statesBeforeEachStep.append(random) }
                    data.gather(order[b * batch..<(b + 1) * batch], into: input)
                    random.fillNormal(noise, count: batch * latent)
                    let hypers = controller.hypers(step: epoch * steps + b, epoch: epoch, stepsPerEpoch: steps, totalSteps: steps * epochs)
                    for (name, value) in hypers { step.setHyper(name, Float(value)) }
                    step.run()
                    optimizer.update(parameters: parameters, gradients: gradients)
                }
            }
        }
    }
}
