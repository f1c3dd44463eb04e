import Foundation
import VAECore

/// `vaec bench MODEL.vae`: times the training step the way `vaec run` takes it (gather a batch, draw the
/// noise, run the kernel program, Adam) and prints the median step time, the FLOPs and GFLOP/s of a step,
/// the compile time (file → kernel program), the peak memory and the time share of each kind of kernel.
enum BenchCommand {
    static func run(_ words: ArraySlice<String>) throws {
        if words.contains("--help") { print(Help.commands["bench"]!); return }
        let args = try Arguments(words, valued: ["--batch", "--threads", "--steps", "--warmup"], flags: ["--stages"])
        guard args.positional.count == 1, let path = args.positional.first else {
            throw UsageError("bench takes one model: vaec bench MODEL.vae (or PROGRAM.vaek)")
        }
        let threads = try args.integer("--threads", in: 1...64) ?? 2
        let steps = try args.integer("--steps", in: 1...1_000_000) ?? 300
        let warmup = try args.integer("--warmup", in: 0...1_000_000) ?? 30

        // Compile time: the file to a kernel program bound to memory (parse, check, differentiate,
        // optimise, lower, plan). The median of a few compiles; the first is also shown (cold caches).
        var compileTimes: [Double] = []
        var program: CompiledProgram!
        for _ in 0..<5 {
            let start = now()
            if path.hasSuffix(".vaek") {
                program = try CompiledProgram.read(path: path)
            } else {
                program = try Compiler.compile(path: path).program
            }
            let batch = try args.integer("--batch", in: 1...1_000_000) ?? program.model.train.batch
            _ = Executable(graph: program.graph, outputs: trainOutputs(program.model), batch: batch, threads: threads)
            compileTimes.append(now() - start)
        }
        let model = program.model
        let batch = try args.integer("--batch", in: 1...1_000_000) ?? model.train.batch

        let data = loadData(program, path: path)
        let bench = Step(program: program, batch: batch, threads: threads, data: data)
        for _ in 0..<warmup { bench.step() }
        var times: [Double] = []
        for _ in 0..<steps {
            let start = now()
            bench.step()
            times.append(now() - start)
        }
        // A second pass with the per-kernel timers on, for the breakdown only.
        bench.executable.profiling = true
        bench.executable.resetProfile()
        var phases = [String: Double]()
        for _ in 0..<max(steps / 2, 1) { bench.step(phases: &phases) }
        let profile = bench.executable.profile

        let median = times.sorted()[times.count / 2]
        let flops = Double(bench.executable.flopsPerRun + bench.updateFlops)
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let peakMiB = Double(usage.ru_maxrss) / 1024
        let compileMedian = compileTimes.sorted()[compileTimes.count / 2]
        print("\(model.name): batch \(batch), \(threads) thread\(threads == 1 ? "" : "s"), \(data.synthetic ? "synthetic data" : "data \((data.path as NSString).lastPathComponent)")")
        print(String(format: "%.2f ms/step (median of %d steps; min %.2f, max %.2f), %.3f GFLOP/step, %.1f GFLOP/s",
                     median * 1e3, steps, times.min()! * 1e3, times.max()! * 1e3, flops / 1e9, flops / median / 1e9))
        print(String(format: "compile %.1f ms (file → kernel program; median of %d, first %.1f ms), peak RSS %.1f MiB, the step's values %.2f MiB",
                     compileMedian * 1e3, compileTimes.count, compileTimes[0] * 1e3, peakMiB,
                     Double(bench.executable.bytesAllocated) / 1_048_576))
        let parts: [(String, Double)] = [
            ("gemm", profile.seconds[.gemm] ?? 0), ("elementwise", profile.seconds[.elementwise] ?? 0), ("image", profile.seconds[.image] ?? 0),
            ("update", phases["update"] ?? 0), ("data", phases["data"] ?? 0),
        ]
        let total = phases["total"] ?? parts.reduce(0) { $0 + $1.1 }
        let other = max(0, total - parts.reduce(0) { $0 + $1.1 })
        let shares = (parts + [("other", other)]).map { String(format: "%@ %.1f%%", $0.0, 100 * $0.1 / total) }
        print("time by kernel: " + shares.joined(separator: ", "))
        if args.flags.contains("--stages") {
            print("  mean µs   min µs  stage")
            for (i, name) in profile.stageNames.enumerated() {
                print(String(format: "  %7.1f  %7.1f  %@", profile.stages[i] / Double(max(profile.runs, 1)) * 1e6,
                             profile.stageMinimum[i] * 1e6, name))
            }
            let floor = profile.stageMinimum.reduce(0, +)
            print(String(format: "  sum of the minima: %.2f ms (the step without interference, before data and update)", floor * 1e3))
        }
    }

    static func trainOutputs(_ model: ModelSpec) -> [String] {
        [OutputName.loss, OutputName.reconstruction, OutputName.kl] + model.parameters.map { OutputName.gradient($0.name) }
    }

    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    struct Data {
        var values: Dataset
        var path: String
        var synthetic: Bool
    }

    /// The model's training data if it can be read, else uniform values in [0, 1] (same cost per step).
    static func loadData(_ program: CompiledProgram, path: String) -> Data {
        let model = program.model
        if let source = model.train.data {
            let directory = RunCommand.dataDirectory(for: path, program: program)
            if let d = try? Dataset.load(source, relativeTo: directory, input: model.input), d.count >= 1 {
                return Data(values: d, path: d.path, synthetic: false)
            }
        }
        var rng = RandomSource(seed: 1)
        let count = 512, features = model.input.featureCount
        let values = (0..<count * features).map { _ in rng.nextUniform() }
        return Data(values: Dataset(path: "synthetic", count: count, features: features, values: values),
                    path: "synthetic", synthetic: true)
    }

    /// One training step's state: parameters, Adam, the executable and its batch and noise.
    final class Step {
        let executable: Executable
        let parameters: ParameterStore
        let optimizer: Adam
        let data: Dataset
        let batch: Int
        let loader: BatchLoader
        let gradients: [UnsafeMutablePointer<Float>]
        var random = RandomSource(seed: 0)
        var order: [Int]
        var position = 0

        init(program: CompiledProgram, batch: Int, threads: Int, data: Data) {
            let model = program.model
            self.batch = batch
            self.data = data.values
            parameters = ParameterStore(specs: model.parameters)
            parameters.initialize(random: &random)
            optimizer = Adam(spec: model.train.optimizer, parameters: model.parameters)
            optimizer.threads = threads
            executable = Executable(graph: program.graph, outputs: BenchCommand.trainOutputs(model), batch: batch, threads: threads)
            loader = BatchLoader(data: data.values, batch: batch, noisePerExample: model.latent.featureCount)
            for (i, spec) in model.parameters.enumerated() {
                if let id = executable.uses(.parameter(spec.name)) { executable.bind(id, to: parameters.pointers[i]) }
            }
            if let id = executable.uses(.input(model.input.name)) { executable.bind(id, to: loader.input, finite: data.values.isFinite) }
            if let id = executable.uses(.noise(model.latent.name)) { executable.bind(id, to: loader.noise) }
            let hypers: [String: Float] = ["beta": 1, "1/batch": 1 / Float(batch), "batch": Float(batch), "recon_weight": 1, "capacity": 0]
            for (name, _) in executable.leaves(where: { if case .hyper(let n) = $0 { n } else { nil } }) {
                executable.setHyper(name, hypers[name] ?? 0)
            }
            let e = executable
            gradients = model.parameters.map { e.value(OutputName.gradient($0.name))! }
            order = []
            order = random.permutation(data.values.count)
        }

        /// Adam's arithmetic per parameter: two moment updates, the square root, the step.
        var updateFlops: Int { 10 * parameters.totalCount }

        /// Rows of the next batch, cycling through a permutation (with repeats when the data is small).
        private func rows() -> ArraySlice<Int> {
            if position + batch > order.count {
                order = random.permutation(data.count)
                while order.count < batch { order += order }
                position = 0
            }
            defer { position += batch }
            return order[position..<position + batch]
        }

        /// The batch after the current one when it comes without a new permutation (which would be
        /// drawn before its noise): the one the step prepares during its update, as `vaec run` does.
        private var prefetchableRows: ArraySlice<Int>? {
            position + batch <= order.count ? order[position..<position + batch] : nil
        }

        func step() {
            loader.load(rows(), random: &random)
            executable.run()
            update()
        }

        /// Adam, with the next batch prepared alongside when it can be.
        private func update() {
            optimizer.update(parameters: parameters, gradients: gradients,
                             alongside: prefetchableRows.map { loader.prefetch($0, after: random) })
        }

        /// The same step with a timer around each phase. "data" is the part of preparing the batch
        /// that is not overlapped with the previous update: a prefetched batch costs only its check
        /// here, and its gather and noise are timed within "update".
        func step(phases: inout [String: Double]) {
            let t0 = BenchCommand.now()
            loader.load(rows(), random: &random)
            let t1 = BenchCommand.now()
            executable.run()
            let t2 = BenchCommand.now()
            update()
            let t3 = BenchCommand.now()
            phases["data", default: 0] += t1 - t0
            phases["update", default: 0] += t3 - t2
            phases["total", default: 0] += t3 - t0
        }
    }
}
