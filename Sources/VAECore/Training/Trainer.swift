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
    public private(set) var random: RandomSource
    public private(set) var step = 0
    public private(set) var epoch = 0
    public private(set) var history: [EpochReport] = []
    public private(set) var controller: BetaController

    let train: Dataset
    let test: Dataset?
    private var trainStep: Executable
    private var evaluators: [Int: Executable] = [:]
    private let batchBuffer: UnsafeMutablePointer<Float>
    private let noiseBuffer: UnsafeMutablePointer<Float>
    private let gradientPointers: [UnsafeMutablePointer<Float>]

    public init(program: CompiledProgram, train: Dataset, test: Dataset?, options: TrainOptions = TrainOptions()) throws {
        self.program = program
        self.train = train
        self.test = test
        self.options = options
        let model = program.model
        let batch = model.train.batch
        guard train.count >= batch else {
            throw VAECError.training("\(train.path) has \(train.count) examples, fewer than one batch of \(batch)")
        }
        random = RandomSource(seed: model.train.seed)
        controller = BetaController(schedule: model.objective.beta)
        parameters = ParameterStore(specs: model.parameters)
        parameters.initialize(random: &random)
        optimizer = Adam(spec: model.train.optimizer, parameters: model.parameters)
        let outputs = [OutputName.loss, OutputName.reconstruction, OutputName.kl] + model.parameters.map { OutputName.gradient($0.name) }
        let step = Executable(graph: program.graph, outputs: outputs, batch: batch, threads: options.threads)
        trainStep = step
        batchBuffer = .allocate(capacity: batch * train.features)
        noiseBuffer = .allocate(capacity: batch * model.latent.featureCount)
        gradientPointers = model.parameters.map { step.value(OutputName.gradient($0.name))! }
        bind(trainStep, batch: batchBuffer, noise: noiseBuffer)
    }

    deinit { batchBuffer.deallocate(); noiseBuffer.deallocate() }

    private func bind(_ e: Executable, batch: UnsafeMutablePointer<Float>, noise: UnsafeMutablePointer<Float>) {
        let model = program.model
        for (index, spec) in model.parameters.enumerated() {
            if let id = e.uses(.parameter(spec.name)) { e.bind(id, to: parameters.pointers[index]) }
        }
        if let id = e.uses(.input(model.input.name)) { e.bind(id, to: batch) }
        if let id = e.uses(.noise(model.latent.name)) { e.bind(id, to: noise) }
    }

    public var epochs: Int { options.epochs ?? program.model.train.epochs }

    /// Trains every remaining epoch; `afterEpoch` may return false to stop early.
    @discardableResult
    public func run(afterEpoch: (EpochReport) -> Bool = { _ in true }) throws -> [EpochReport] {
        while epoch < epochs {
            let report = try runEpoch()
            if !afterEpoch(report) { break }
        }
        return history
    }

    public func runEpoch() throws -> EpochReport {
        let model = program.model
        let batch = model.train.batch
        let start = Date()
        let order = random.permutation(train.count)
        var reconstruction = 0.0, kl = 0.0, examples = 0
        var beta = 0.0
        let stepsPerEpoch = train.count / batch
        for first in stride(from: 0, through: train.count - batch, by: batch) {
            let hypers = controller.hypers(step: step, epoch: epoch, stepsPerEpoch: stepsPerEpoch,
                                           totalSteps: stepsPerEpoch * epochs)
            beta = hypers["beta"] ?? 1
            let (r, k) = try trainOn(order[first..<first + batch], hypers: hypers)
            controller.observe(reconstruction: r / Double(batch), kl: k / Double(batch))
            reconstruction += r; kl += k; examples += batch
        }
        epoch += 1
        var report = EpochReport(epoch: epoch, trainReconstruction: reconstruction / Double(examples),
                                 trainKL: kl / Double(examples), beta: beta, seconds: 0, steps: examples / batch)
        if let test {
            let (r, k) = evaluate(test, seed: model.train.seed &+ UInt64(epoch))
            report.testReconstruction = r; report.testKL = k
        }
        report.seconds = Date().timeIntervalSince(start)
        history.append(report)
        return report
    }

    /// One step: forward, backward, Adam. Returns the batch's summed reconstruction and KL in nats.
    func trainOn(_ rows: ArraySlice<Int>, hypers: [String: Double]) throws -> (Double, Double) {
        let batch = rows.count
        train.gather(rows, into: batchBuffer)
        random.fillNormal(noiseBuffer, count: batch * program.model.latent.featureCount)
        for (name, value) in hypers { trainStep.setHyper(name, Float(value)) }
        trainStep.setHyper("1/batch", 1 / Float(batch))
        trainStep.run()
        let loss = trainStep.scalar(OutputName.loss)
        guard loss.isFinite else {
            throw VAECError.training("the loss became \(loss) at step \(step + 1) (epoch \(epoch + 1)); training stopped")
        }
        optimizer.update(parameters: parameters, gradients: gradientPointers)
        step += 1
        return (Double(trainStep.scalar(OutputName.reconstruction)), Double(trainStep.scalar(OutputName.kl)))
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
            let input = e.buffers[e.uses(.input(program.model.input.name))!]!
            let noise = e.buffers[e.uses(.noise(program.model.latent.name))!]!
            data.gather(Array(first..<first + size)[...], into: input)
            rng.fillNormal(noise, count: size * program.model.latent.featureCount)
            e.run()
            reconstruction += Double(e.scalar(OutputName.reconstruction))
            kl += Double(e.scalar(OutputName.kl))
            first += size
        }
        return (reconstruction / Double(data.count), kl / Double(data.count))
    }

    /// A forward-only executable for a batch size, with its own input and noise buffers.
    func evaluator(batch: Int) -> Executable {
        if let e = evaluators[batch] { return e }
        let e = Executable(graph: program.graph, outputs: [OutputName.reconstruction, OutputName.kl],
                           batch: batch, threads: options.threads)
        let input = UnsafeMutablePointer<Float>.allocate(capacity: batch * train.features)
        let noise = UnsafeMutablePointer<Float>.allocate(capacity: batch * program.model.latent.featureCount)
        e.adopt(input); e.adopt(noise)
        bind(e, batch: input, noise: noise)
        evaluators[batch] = e
        return e
    }
}
