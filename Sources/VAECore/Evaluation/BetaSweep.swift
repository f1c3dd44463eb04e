import Foundation

/// Trains one model at several constant β and measures each on the test set: the points of a
/// rate–distortion curve (Alemi et al. 2018, "Fixing a Broken ELBO"): rate R = KL, distortion
/// D = reconstruction, −ELBO = D + R, all in nats per example.
public enum BetaSweep {
    public struct Point: Sendable {
        public var beta: Double
        /// β relative to the ELBO after the objective's reductions (`WeightingReport.effectiveBeta`).
        public var effectiveBeta: Double
        public var evaluation: EvaluationResult
        public var history: [EpochReport]
        public var seconds: Double
        /// Where its checkpoint (and report) went.
        public var directory: String

        public var rate: Double { evaluation.kl }
        public var distortion: Double { evaluation.reconstruction }
    }

    /// The program with its β schedule replaced by the constant `beta`. β enters the graph as the
    /// `hyper("beta")` leaf, so the graph stays as it is; objectives whose loss has other weights set
    /// each step (GECO's λ, the capacity C) have no single β to sweep and are refused.
    public static func program(_ program: CompiledProgram, beta: Double) throws -> CompiledProgram {
        let model = program.model
        switch model.objective.beta {
        case .geco, .capacity:
            throw VAECError.usage("model '\(model.name)' weights its KL with \(model.objective.beta.summary), which has no single β to sweep; sweep a model with 'beta: NUMBER' or a β schedule instead")
        default:
            break
        }
        var copy = program
        copy.model.objective.beta = .constant(beta)
        return copy
    }

    /// How the trainings share the machine: `jobs` trainings at a time, each with `threadsPerJob` kernel threads.
    public struct Plan: Sendable {
        public var jobs: Int
        public var threadsPerJob: Int
        public init(jobs: Int, threadsPerJob: Int) { self.jobs = max(1, jobs); self.threadsPerJob = max(1, threadsPerJob) }
    }

    /// Trains every β (each from the model's own initialisation and seed), saves each checkpoint and
    /// report in `outDirectory/beta-<β>/`, and evaluates each on `test` (the training data when nil).
    /// `log` is called from the worker threads, one line at a time.
    public static func run(program: CompiledProgram, betas: [Double], train: Dataset, test: Dataset?, epochs: Int?,
                           plan: Plan, outDirectory: String, iwSamples: Int = 0,
                           log: @escaping @Sendable (String) -> Void) throws -> [Point] {
        let programs = try betas.map { try Self.program(program, beta: $0) }
        let lock = NSLock()
        var results = [Point?](repeating: nil, count: betas.count)
        var failure: Error?
        var next = 0
        func take() -> Int? {
            lock.lock(); defer { lock.unlock() }
            guard failure == nil, next < betas.count else { return nil }
            next += 1
            return next - 1
        }
        DispatchQueue.concurrentPerform(iterations: min(plan.jobs, betas.count)) { _ in
            while let index = take() {
                do {
                    let point = try trainOne(programs[index], beta: betas[index], train: train, test: test, epochs: epochs,
                                          threads: plan.threadsPerJob, outDirectory: outDirectory, iwSamples: iwSamples, log: log)
                    lock.lock(); results[index] = point; lock.unlock()
                } catch {
                    lock.lock(); if failure == nil { failure = error }; lock.unlock()
                }
            }
        }
        if let failure { throw failure }
        return results.map { $0! }
    }

    public static func directoryName(beta: Double) -> String { "beta-\(WeightingReport.format(beta))" }

    static func trainOne(_ program: CompiledProgram, beta: Double, train: Dataset, test: Dataset?, epochs: Int?, threads: Int,
                      outDirectory: String, iwSamples: Int, log: @escaping @Sendable (String) -> Void) throws -> Point {
        let model = program.model
        var options = TrainOptions()
        options.threads = threads
        options.epochs = epochs
        let label = "β = \(WeightingReport.format(beta))"
        options.log = { log("[\(label)] \($0)") }
        let start = Date()
        let trainer = try Trainer(program: program, train: train, test: test, options: options)
        let history = try trainer.run { report in
            var line = String(format: "[%@] epoch %d/%d  train -ELBO %.2f (recon %.2f, KL %.2f)", label, report.epoch,
                              trainer.epochs, report.trainELBO, report.trainReconstruction, report.trainKL)
            if let elbo = report.testELBO { line += String(format: "  test -ELBO %.2f", elbo) }
            log(line)
            return true
        }
        let seconds = Date().timeIntervalSince(start)
        let directory = (outDirectory as NSString).appendingPathComponent(directoryName(beta: beta))
        let checkpoint = (directory as NSString).appendingPathComponent(Checkpoint.fileName)
        try Checkpoint.save(trainer.parameters, model: model, epoch: trainer.epoch, step: trainer.step, to: checkpoint)
        // Each β gets its own report (pictures, curves); its evaluation gives the sweep's numbers.
        let report = try RunReport.write(program: program, parameters: trainer.parameters, history: history, data: test ?? train,
                                         to: RunReport.directory(forRun: directory),
                                         options: .init(iwSamples: iwSamples, threads: threads, checkpoint: checkpoint))
        let evaluation = report.evaluation
        let factor = model.objective.effectiveBetaFactor(features: model.input.featureCount, latents: model.latent.featureCount)
        return Point(beta: beta, effectiveBeta: beta * factor, evaluation: evaluation, history: history,
                     seconds: seconds, directory: directory)
    }
}
