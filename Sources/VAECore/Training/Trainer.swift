import Foundation

/// One epoch's figures, per example, in nats.
public struct EpochReport: Sendable {
    public var epoch: Int
    public var trainReconstruction: Double
    public var trainKL: Double
    public var testReconstruction: Double?
    public var testKL: Double?
    public var beta: Double
    public var seconds: Double
    public var steps: Int

    public var trainELBO: Double { trainReconstruction + trainKL }
    public var testELBO: Double? { testReconstruction.flatMap { r in testKL.map { r + $0 } } }
}

public struct TrainOptions: Sendable {
    public var threads = 1
    /// Overrides the model file's epochs when set.
    public var epochs: Int?
    public var log: @Sendable (String) -> Void = { print($0) }
    public init() {}
}

/// Runs the training recipe of a compiled program: shuffling, one reparameterised sample per example,
/// forward + backward + Adam each step, evaluation on the test set after each epoch.
public final class Trainer {
    public let program: CompiledProgram
    public let parameters: ParameterStore
    public let optimizer: Adam
    public let options: TrainOptions
    public internal(set) var random: RandomSource
    public internal(set) var step = 0
    public internal(set) var epoch = 0
    public internal(set) var history: [EpochReport] = []
    public internal(set) var controller: BetaController

    /// The training data as this epoch sees it (a fresh draw each epoch under dynamic binarisation).
    var train: Dataset { loader.data }
    /// The training data as loaded.
    let source: Dataset
    let test: Dataset?
    private var trainStep: Executable
    private var evaluators: [Int: (executable: Executable, input: UnsafeMutablePointer<Float>, noise: UnsafeMutablePointer<Float>)] = [:]
    /// The step's input batch and noise, and the prefetch of the next step's.
    private let loader: BatchLoader
    private let gradientPointers: [UnsafeMutablePointer<Float>]

    public init(program: CompiledProgram, train: Dataset, test: Dataset?, options: TrainOptions = TrainOptions()) throws {
        self.program = program
        let binarize = program.model.train.binarize
        self.source = train
        // The test set is binarised once, with a fixed draw, so every epoch is evaluated on the same data.
        self.test = test?.binarized(binarize, draw: Trainer.drawSeed(program.model.train.seed, epoch: -1))
        self.options = options
        let model = program.model
        let batch = model.train.batch
        guard batch >= 1 else { throw VAECError.training("the batch size is \(batch); it must be at least 1") }
        guard train.count >= batch else {
            throw VAECError.training("\(train.path) has \(train.count) examples, fewer than one batch of \(batch)")
        }
        for data in [train] + (test.map { [$0] } ?? []) where data.features != model.input.featureCount {
            throw VAECError.training("\(data.path) has \(data.features) values per example, but input '\(model.input.name)' has \(model.input.featureCount)")
        }
        try Trainer.checkMemory(program, batch: batch, test: test)
        random = RandomSource(seed: model.train.seed)
        controller = BetaController(schedule: model.objective.beta)
        parameters = ParameterStore(specs: model.parameters)
        parameters.initialize(random: &random)
        optimizer = Adam(spec: model.train.optimizer, parameters: model.parameters)
        optimizer.threads = options.threads
        let outputs = [OutputName.loss, OutputName.reconstruction, OutputName.kl] + model.parameters.map { OutputName.gradient($0.name) }
        let step = Executable(graph: program.graph, outputs: outputs, batch: batch, threads: options.threads)
        trainStep = step
        loader = BatchLoader(data: train.binarized(binarize, draw: Trainer.drawSeed(model.train.seed, epoch: 0)),
                             batch: batch, noisePerExample: model.latent.featureCount)
        gradientPointers = try model.parameters.map { p in
            guard let g = step.value(OutputName.gradient(p.name)) else {
                throw VAECError.training("the program of \(model.name) has no gradient for parameter '\(p.name)'")
            }
            return g
        }
        bind(trainStep, batch: loader.input, noise: loader.noise, finiteBatch: train.isFinite)
    }

    /// Bytes of values, parameters and moments a run needs at most (see `checkMemory`).
    static func estimatedBytes(_ program: CompiledProgram, batch: Int, test: Dataset?) -> Double {
        let rows = max(batch, min(test?.count ?? 0, 500))
        var values = 0.0
        for node in program.graph.nodes {
            values += Double(SizeLimits.product(node.shape.dims) ?? .max) * Double(node.shape.batched ? rows : 1)
        }
        let parameters = program.model.parameters.reduce(0.0) { $0 + Double(SizeLimits.product($1.dims) ?? .max) }
        return values * 4 + parameters * 12
    }

    /// Refuses a run whose buffers could not fit in this machine's memory before allocating any of
    /// them: a value per graph node and example (an upper bound on what the executables allocate,
    /// counting the test evaluator's chunks of up to 500), plus parameters and Adam's two moments.
    static func checkMemory(_ program: CompiledProgram, batch: Int, test: Dataset?) throws {
        let bytes = estimatedBytes(program, batch: batch, test: test)
        let available = Double(ProcessInfo.processInfo.physicalMemory)
        guard bytes <= available else {
            throw VAECError.training(String(format: "training %@ with batch %d needs about %.1f GiB for its values, more than this machine's %.1f GiB of memory: use a smaller batch or smaller layers",
                                            program.model.name, batch, bytes / 1_073_741_824, available / 1_073_741_824))
        }
    }

    /// `finiteBatch`: every batch gathered into `batch` is finite (every batch of a finite training set
    /// and of its binarisations is).
    private func bind(_ e: Executable, batch: UnsafeMutablePointer<Float>, noise: UnsafeMutablePointer<Float>, finiteBatch: Bool = false) {
        let model = program.model
        for (index, spec) in model.parameters.enumerated() {
            if let id = e.uses(.parameter(spec.name)) { e.bind(id, to: parameters.pointers[index]) }
        }
        if let id = e.uses(.input(model.input.name)) { e.bind(id, to: batch, finite: finiteBatch) }
        if let id = e.uses(.noise(model.latent.name)) { e.bind(id, to: noise) }
    }

    public var epochs: Int { options.epochs ?? program.model.train.epochs }
    public var stepsPerEpoch: Int { train.count / program.model.train.batch }

    /// Where training is inside the current epoch, so a checkpoint can be taken between any two steps
    /// and a resumed run continues with the same batches, noise and running sums.
    struct EpochProgress {
        /// The random state the epoch's shuffle was drawn from: the order is re-derived from it on resume.
        var shuffleState: [UInt64]
        var order: [Int]
        var batchesDone = 0
        var reconstruction = 0.0
        var kl = 0.0
        var beta = 0.0
        var seconds = 0.0
    }
    /// nil between epochs.
    var progress: EpochProgress?

    /// How a call to `train` ended.
    public enum Outcome: Sendable, Equatable {
        /// Every epoch ran.
        case finished
        /// `shouldStop` returned true (e.g. Ctrl-C) or `afterEpoch` returned false; the state is
        /// consistent at a step boundary and can be checkpointed.
        case stopped
    }

    /// Trains every remaining epoch; `afterEpoch` may return false to stop early.
    @discardableResult
    public func run(afterEpoch: (EpochReport) -> Bool = { _ in true }) throws -> [EpochReport] {
        _ = try train(afterEpoch: afterEpoch)
        return history
    }

    /// Trains until the last epoch, one step at a time.
    /// - `checkpointEvery`: call `checkpoint` after every that many steps; nil: after every epoch.
    /// - `shouldStop`: polled before each step (an interrupt flag); true stops at that step boundary.
    /// - `afterEpoch`: sees each epoch's report (before that epoch's checkpoint); false stops.
    /// A non-finite loss or gradient throws `NonFiniteValueError` before the optimizer touches the
    /// parameters, so they (and any checkpoint) stay as they were after the last good step.
    @discardableResult
    public func train(checkpointEvery: Int? = nil,
                      shouldStop: () -> Bool = { false },
                      afterEpoch: (EpochReport) -> Bool = { _ in true },
                      checkpoint: (Trainer) throws -> Void = { _ in }) throws -> Outcome {
        while epoch < epochs {
            if shouldStop() { return .stopped }
            if progress == nil { beginEpoch() }
            try trainNextBatch()
            // The step that ends an epoch is checkpointed after the epoch's report, so a checkpoint
            // never holds a finished epoch that was not yet counted.
            let report = progress!.batchesDone == stepsPerEpoch ? finishEpoch() : nil
            let goOn = report.map(afterEpoch) ?? true
            if checkpointEvery.map({ step % max($0, 1) == 0 }) ?? (report != nil) { try checkpoint(self) }
            if !goOn { return .stopped }
        }
        return .finished
    }

    /// Trains one whole epoch (finishing the current one if a resume left it part-done).
    public func runEpoch() throws -> EpochReport {
        if progress == nil { beginEpoch() }
        while progress!.batchesDone < stepsPerEpoch { try trainNextBatch() }
        return finishEpoch()
    }

    /// The seed of the dynamic binarisation draw of an epoch (−1: the test set's).
    static func drawSeed(_ seed: UInt64, epoch: Int) -> UInt64 {
        (seed &* 0x9E37_79B9_7F4A_7C15) ^ UInt64(bitPattern: Int64(epoch)) ^ 0xB1A7
    }

    /// Under dynamic binarisation, each epoch trains on its own Bernoulli draw of the data.
    func drawEpochData() {
        if case .dynamic = program.model.train.binarize {
            loader.data = source.binarized(.dynamic, draw: Trainer.drawSeed(program.model.train.seed, epoch: epoch))
        }
    }

    func beginEpoch() {
        drawEpochData()
        let shuffleState = random.stateWords
        progress = EpochProgress(shuffleState: shuffleState, order: random.permutation(train.count))
    }

    func trainNextBatch() throws {
        let batch = program.model.train.batch
        let start = Date()
        let first = progress!.batchesDone * batch
        let hypers = controller.hypers(step: step, epoch: epoch, stepsPerEpoch: stepsPerEpoch,
                                       totalSteps: stepsPerEpoch * epochs)
        // Between this step and the next batch of the same epoch nothing else draws from the generator
        // (the controller, the reports and checkpoints do not; the evaluation has its own), so that
        // batch can be prepared during this step's update. The first batch of an epoch cannot: the
        // epoch's shuffle is drawn before it.
        let next = progress!.batchesDone + 1 < stepsPerEpoch ? progress!.order[first + batch..<first + 2 * batch] : nil
        let (r, k) = try trainOn(progress!.order[first..<first + batch], hypers: hypers, prefetching: next)
        controller.observe(reconstruction: r / Double(batch), kl: k / Double(batch))
        progress!.beta = BetaController.effectiveBeta(hypers)
        progress!.reconstruction += r
        progress!.kl += k
        progress!.batchesDone += 1
        progress!.seconds += Date().timeIntervalSince(start)
    }

    func finishEpoch() -> EpochReport {
        let p = progress!
        let start = Date()
        let examples = p.batchesDone * program.model.train.batch
        epoch += 1
        var report = EpochReport(epoch: epoch, trainReconstruction: p.reconstruction / Double(examples),
                                 trainKL: p.kl / Double(examples), beta: p.beta, seconds: 0, steps: p.batchesDone)
        if let test {
            // Chunks of the training batch: the evaluator's values then fit in the arena the training
            // step already has (a 500-row chunk grew the shared arena and the run's peak memory).
            let (r, k) = evaluate(test, seed: program.model.train.seed &+ UInt64(epoch), chunk: program.model.train.batch)
            report.testReconstruction = r; report.testKL = k
        }
        report.seconds = p.seconds + Date().timeIntervalSince(start)
        history.append(report)
        progress = nil
        return report
    }

    /// One step: forward, backward, Adam. Returns the batch's summed reconstruction and KL in nats.
    /// `next`: the rows of the next step, to prepare during the update with the draws that follow this
    /// step's (only when nothing else draws from the generator in between).
    func trainOn(_ rows: ArraySlice<Int>, hypers: [String: Double], prefetching next: ArraySlice<Int>?) throws -> (Double, Double) {
        loader.load(rows, random: &random)
        for (name, value) in hypers { trainStep.setHyper(name, Float(value)) }
        trainStep.run()
        if let problem = nonFiniteResult() {
            throw NonFiniteValueError(quantity: problem.quantity, value: problem.value, step: step + 1, epoch: epoch + 1,
                                      batch: (progress?.batchesDone ?? 0) + 1, batchesPerEpoch: stepsPerEpoch,
                                      origin: NonFiniteValueError.firstNonFinite(in: trainStep, model: program.model))
        }
        // Past the NaN guard (which may re-run the step on this batch) nothing reads the buffers again.
        optimizer.update(parameters: parameters, gradients: gradientPointers,
                         alongside: next.map { loader.prefetch($0, after: random) })
        step += 1
        return (Double(trainStep.scalar(OutputName.reconstruction)), Double(trainStep.scalar(OutputName.kl)))
    }

    /// The loss, the metrics or a gradient that is NaN or infinite after a step, if any.
    private func nonFiniteResult() -> (quantity: String, value: Float)? {
        for name in [OutputName.loss, OutputName.reconstruction, OutputName.kl] {
            let v = trainStep.scalar(name)
            if !v.isFinite { return (name == OutputName.loss ? "the loss" : "the \(name) term", v) }
        }
        for (spec, g) in zip(program.model.parameters, gradientPointers) {
            // One vectorised pass finds out whether a gradient has a bad value; the scan for which one
            // runs only when it has. A finite gradient whose square is not (|g| > 1.8e19) is bad too:
            // Adam's second moment would become +Inf and stay there.
            if !VectorMath.allSquaresFinite(g, spec.count), let i = (0..<spec.count).first(where: { !(g[$0] * g[$0]).isFinite }) {
                return ("the gradient of '\(spec.name)'", g[i])
            }
        }
        return nil
    }

    /// Mean reconstruction and KL per example over a data set, with one posterior sample per example
    /// drawn from a generator seeded by `seed` (evaluation never disturbs the training stream).
    public func evaluate(_ data: Dataset, seed: UInt64, chunk: Int = 500) -> (reconstruction: Double, kl: Double) {
        var rng = RandomSource(seed: seed ^ 0x5EED_E7A1)
        var reconstruction = 0.0, kl = 0.0
        var first = 0
        while first < data.count {
            let size = min(chunk, data.count - first)
            let e = evaluator(batch: size)
            data.gather(Array(first..<first + size)[...], into: e.input)
            rng.fillNormal(e.noise, count: size * program.model.latent.featureCount)
            e.executable.run()
            reconstruction += Double(e.executable.scalar(OutputName.reconstruction))
            kl += Double(e.executable.scalar(OutputName.kl))
            first += size
        }
        return (reconstruction / Double(data.count), kl / Double(data.count))
    }

    /// A forward-only executable for a batch size, with its own input and noise buffers (bound when
    /// the metrics read them; filled either way, so the random stream does not depend on the graph).
    func evaluator(batch: Int) -> (executable: Executable, input: UnsafeMutablePointer<Float>, noise: UnsafeMutablePointer<Float>) {
        if let e = evaluators[batch] { return e }
        let e = Executable(graph: program.graph, outputs: [OutputName.reconstruction, OutputName.kl],
                           batch: batch, threads: options.threads)
        let input = UnsafeMutablePointer<Float>.allocate(capacity: batch * train.features)
        let noise = UnsafeMutablePointer<Float>.allocate(capacity: batch * program.model.latent.featureCount)
        e.adopt(input); e.adopt(noise)
        bind(e, batch: input, noise: noise)
        evaluators[batch] = (e, input, noise)
        return (e, input, noise)
    }
}
