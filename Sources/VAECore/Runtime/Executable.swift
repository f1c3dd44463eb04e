import Foundation

/// A graph instantiated for one batch size, in two forms that compute the same values:
///
/// - `run()`: the kernel program (`Lowering/`): fused elementwise kernels and GEMMs in stages for the
///   threads, every intermediate in an arena at an offset planned by liveness. The arena is shared by
///   the executables of the process (`SharedArena`: an intermediate lives only during its run), so the
///   trainer's step and its evaluator hold one arena between them. Nothing is allocated per step.
/// - `run(inspecting:)`: the plain interpreter, one IR node at a time, calling back after each node with
///   its value (the NaN guard's search for the first bad op, `vaec grad --values`, the Double sums of
///   the gradient check). Its arena is allocated on first use.
///
/// Both use the same elementwise functions (`VectorMath`), so they differ only in the order of sums.
/// Requested outputs, constants and hypers live in one pinned block shared by both forms; parameters,
/// the data batch and the noise are bound to memory the caller owns (no copies).
public final class Executable {
    public let graph: Graph
    public let batch: Int
    public let threads: Int
    /// Nodes the requested outputs need, in order (the plain interpreter's schedule).
    let schedule: [ValueID]
    let program: KernelProgram
    let staging: Staging
    let plan: MemoryPlan
    /// Memory of each value: bound leaves, pinned values and the kernel program's intermediates (after an
    /// inspecting run, the plain interpreter's). nil for values never in memory.
    private(set) var buffers: [UnsafeMutablePointer<Float>?]
    private var owned: [UnsafeMutablePointer<Float>] = []
    /// Nodes whose buffers belong to the caller (parameters, input, noise).
    private var bound: Set<ValueID> = []
    /// Bound leaves whose memory the caller keeps finite (`bind(_:to:finite:)`).
    private var finiteLeaves: Set<ValueID> = []
    /// The batch-size hypers are known here, so no caller has to remember them: `1/batch` (batch mean)
    /// and `batch` (batch sum).
    private lazy var hyperValues: [String: Float] = ["1/batch": 1 / Float(batch), "batch": Float(batch)]
    private let hypers: [(name: String, pointer: UnsafeMutablePointer<Float>)]
    private let pinned: UnsafeMutablePointer<Float>
    private let pinnedOffsets: [ValueID: Int]
    private let pinnedSize: Int
    /// The arena the stages are bound to (the shared one, or `privateArena` when it was taken).
    private var arena: UnsafeMutablePointer<Float>?
    private var privateArena: UnsafeMutablePointer<Float>?
    private let registers: UnsafeMutablePointer<Float>
    private let registersPerThread: Int
    /// The kernel program bound to memory; rebuilt after a `bind`.
    private var stages: [BoundStage] = []
    private var stale = true
    /// The plain interpreter's memory, made on first use.
    private var plainPlan: MemoryPlan?
    private var plainArena: UnsafeMutablePointer<Float>?

    /// When set, `run()` accumulates the time of each kind of kernel in `profile`.
    public var profiling = false
    public private(set) var profile = KernelProfile()

    public init(graph: Graph, outputs: [String], batch: Int, threads: Int = 1) {
        self.graph = graph
        self.batch = batch
        self.threads = max(1, threads)
        let roots = outputs.compactMap { graph.output($0) }
        let live = DeadCodePass.live(graph, outputs: roots)
        schedule = (0..<graph.nodes.count).filter { live[$0] }
        program = Fusion.lower(graph, outputs: roots)
        staging = Staging(program, batch: batch, threads: self.threads)
        let pinnedLayout = MemoryPlan.pinned(graph, outputs: roots, schedule: schedule, batch: batch)
        pinnedOffsets = pinnedLayout.offsets
        pinnedSize = pinnedLayout.size
        plan = MemoryPlan(program, staging: staging, batch: batch, pinned: pinnedLayout.offsets)

        pinned = LargePages.zeroed(floats: pinnedLayout.size)
        registersPerThread = program.kernels.reduce(0) { n, k in
            if case .fused(let f) = k { return max(n, f.registers) } else { return n }
        } * FusedKernelRunner.stride
        registers = LargePages.zeroed(floats: registersPerThread * self.threads)
        buffers = Array(repeating: nil, count: graph.nodes.count)
        var hypers: [(String, UnsafeMutablePointer<Float>)] = []
        for (v, offset) in pinnedOffsets {
            buffers[v] = pinned + offset
            switch graph[v].op {
            case .constant(let value): (pinned + offset).pointee = value
            case .hyper(let name): hypers.append((name, pinned + offset))
            default: break
            }
        }
        self.hypers = hypers
    }

    deinit {
        for b in owned { b.deallocate() }
        pinned.deallocate(); registers.deallocate()
        plainArena?.deallocate(); privateArena?.deallocate()
    }

    /// Leaves of a kind, by name (e.g. every `.parameter`), for binding.
    public func leaves(where match: (Op) -> String?) -> [(name: String, id: ValueID)] {
        schedule.compactMap { id in match(graph[id].op).map { ($0, id) } }
    }

    /// Binds a leaf (parameter, input or noise) to memory the caller owns and keeps alive. `finite`:
    /// the caller promises that the memory holds only finite values whenever the kernel program runs
    /// (a data batch gathered from a data set checked at load), so the checks that a sparse product
    /// makes before skipping work are not made on it (Σdh⊗x's dead units: `ZeroRowSkip`). The plain
    /// interpreter checks regardless.
    public func bind(_ id: ValueID, to pointer: UnsafeMutablePointer<Float>, finite: Bool = false) {
        buffers[id] = pointer
        bound.insert(id)
        if finite { finiteLeaves.insert(id) } else { finiteLeaves.remove(id) }
        stale = true
    }

    /// Hands the executable a buffer to free with it (e.g. the input and noise of an evaluator).
    public func adopt(_ pointer: UnsafeMutablePointer<Float>) { owned.append(pointer) }

    public func setHyper(_ name: String, _ value: Float) { hyperValues[name] = value }

    /// Whether the graph (as scheduled) reads the named leaf.
    public func uses(_ op: Op) -> ValueID? { schedule.first { graph[$0].op == op } }

    public func value(_ output: String) -> UnsafeMutablePointer<Float>? {
        graph.output(output).flatMap { buffers[$0] }
    }

    public func scalar(_ output: String) -> Float { value(output)?.pointee ?? .nan }

    public func elementCount(of output: String) -> Int {
        graph.output(output).map { graph[$0].shape.elementCount(batch: batch) } ?? 0
    }

    /// Floating-point operations of one `run()` (2·m·n·k per product, one per element and elementwise op).
    public var flopsPerRun: Int { program.flops(batch: batch) }

    /// Bytes of memory this executable's step uses for its values (pinned block, its plan's share of the
    /// arena, registers; not the plain interpreter's arena, which exists only after an inspecting run).
    public var bytesAllocated: Int { 4 * (pinnedSize + plan.arenaSize + registersPerThread * threads) }

    // MARK: The kernel program

    /// Runs the kernel program.
    public func run() {
        let shared = SharedArena.shared.acquire(plan.arenaSize)
        defer { if shared != nil { SharedArena.shared.release() } }
        let memory: UnsafeMutablePointer<Float>
        if let shared { memory = shared } else {
            if privateArena == nil { privateArena = LargePages.zeroed(floats: plan.arenaSize) }
            memory = privateArena!
        }
        if stale || memory != arena { bindStages(arena: memory) }
        setHypers()
        let pool: WorkerPool? = WorkerPool.shared.acquire(threads: threads) ? WorkerPool.shared : nil
        defer { pool?.release() }
        if profiling {
            if profile.stages.count != stages.count {
                profile.stages = Array(repeating: 0, count: stages.count)
                profile.stageMinimum = Array(repeating: .infinity, count: stages.count)
                profile.stageNames = staging.stages.map { stage in
                    stage.kernels.map { k in
                        describe(program.kernels[k]) + (stage.epilogue(of: k).map { " + " + describe(program.kernels[$0]) } ?? "")
                            + (stage.chunked.contains(k) ? " (row chunks)" : "")
                    }.joined(separator: " | ") + (stage.split ? " (split)" : "")
                }
            }
            for (i, stage) in stages.enumerated() {
                let begin = KernelProfile.now()
                stage.run(pool)
                let seconds = KernelProfile.now() - begin
                profile.add(stage.kind, seconds)
                profile.stages[i] += seconds
                profile.stageMinimum[i] = min(profile.stageMinimum[i], seconds)
            }
            profile.runs += 1
        } else {
            for stage in stages { stage.run(pool) }
        }
    }

    public func resetProfile() { profile = KernelProfile() }

    /// A kernel in a few words, for profiles.
    private func describe(_ kernel: Kernel) -> String {
        switch kernel {
        case .matrix(let m):
            let d = m.dimensions(graph, batch: batch)
            return "\(m.op.mnemonic) %\(m.node) \(d.m)×\(d.n)×\(d.k)"
        case .standalone(let s):
            return "\(s.op.mnemonic) %\(s.node) \(graph[s.node].shape)"
        case .fused(let f):
            return "fused \(f.domain) \(f.nodes.count) ops %\(f.nodes.first!)…%\(f.nodes.last!)"
        }
    }

    private func setHypers() {
        for (name, pointer) in hypers { pointer.pointee = hyperValues[name] ?? .nan }
    }

    /// Memory of a value for the kernel program.
    private func pointer(_ v: ValueID) -> UnsafeMutablePointer<Float> {
        switch graph[v].op {
        case .parameter(let name), .input(let name), .noise(let name):
            precondition(bound.contains(v), "leaf '\(name)' was not bound before running")
            return buffers[v]!
        default:
            if let offset = pinnedOffsets[v] { return pinned + offset }
            return arena! + plan.arena[v]!
        }
    }

    /// Binds the kernel program to the leaves' memory and to an arena (after a `bind`, or when the arena
    /// moved: another executable grew the shared one, or it was taken and the private one is used).
    private func bindStages(arena: UnsafeMutablePointer<Float>) {
        self.arena = arena
        for (v, offset) in plan.arena { buffers[v] = arena + offset }
        let registers = self.registers, perThread = registersPerThread
        stages = staging.stages.map { stage in
            var tasks: [(Int) -> Void] = []
            var finishers: [FusedKernelRunner] = []
            var kind = KernelProfile.Kind.gemm
            for k in stage.kernels {
                switch program.kernels[k] {
                case .matrix(let m):
                    var call = MatrixCall(m, graph, batch: batch, pointer: pointer)
                    call.bFinite = finiteLeaves.contains(m.b)
                    if let e = stage.epilogue(of: k), case .fused(let f) = program.kernels[e] {
                        // The fused kernel after the product, on the thread that computed its input.
                        let runner = FusedKernelRunner(f, batch: batch, pointer: pointer, partials: plan.scratch[e].map { arena + $0 })
                        if stage.split && Self.cutsByRows(call, f) {
                            // Each thread some whole rows of the product, then of the kernel.
                            for rows in Self.rowRanges(call.m, parts: threads) {
                                let piece = call.rowPiece(rows)
                                tasks.append { t in
                                    piece.run(threads: 1)
                                    runner.run(rows: rows, registers: registers + t * perThread)
                                }
                            }
                        } else if stage.split {
                            for piece in call.pieces(threads, byColumns: true) {
                                tasks.append { t in
                                    piece.run(threads: 1)
                                    runner.run(columns: piece.columns, registers: registers + t * perThread)
                                }
                            }
                        } else {
                            tasks.append { t in
                                call.run(threads: 1)
                                for c in 0..<runner.chunks { runner.run(chunk: c, registers: registers + t * perThread) }
                                runner.finish()
                            }
                        }
                        continue
                    }
                    // One piece per thread, claimed dynamically (a thread that starts late takes fewer).
                    // Measured on the mnist step: more pieces repack the shared operand more often and
                    // were slower; one GEMM call with the GEMM's own threading was slower too (its
                    // Dispatch workers wake up later than the pool's spinning ones).
                    for piece in call.pieces(stage.split ? threads : 1) { tasks.append { _ in piece.run(threads: 1) } }
                case .standalone(let s):
                    kind = .image
                    // The fused kernel after it (bias, activation) runs on each range of examples it computes.
                    var epilogue: ImageKernels.Epilogue?
                    if let e = stage.epilogue(of: k), case .fused(let f) = program.kernels[e] {
                        let runner = FusedKernelRunner(f, batch: batch, pointer: pointer, partials: nil)
                        epilogue = { rows, t in runner.run(rows: rows, registers: registers + t * perThread) }
                    }
                    tasks += ImageKernels.bind(s, graph, batch: batch, pieces: stage.split ? threads : 1, pointer: pointer,
                                               epilogue: epilogue)
                case .fused(let f):
                    if k == stage.kernels[0] { kind = .elementwise }   // not a filler beside products
                    let runner = FusedKernelRunner(f, batch: batch, pointer: pointer,
                                                   partials: plan.scratch[k].map { arena + $0 })
                    if stage.split && runner.chunks < threads && f.columnSums.isEmpty && f.domain.batched {
                        // Fewer row chunks than threads: ranges of rows instead (no column sums to add per chunk).
                        for rows in Self.rowRanges(batch, parts: threads) {
                            tasks.append { t in runner.run(rows: rows, registers: registers + t * perThread) }
                        }
                    } else if stage.split || stage.chunked.contains(k) {
                        for c in 0..<runner.chunks {
                            tasks.append { t in runner.run(chunk: c, registers: registers + t * perThread) }
                        }
                    } else {
                        tasks.append { t in for c in 0..<runner.chunks { runner.run(chunk: c, registers: registers + t * perThread) } }
                    }
                    if !f.columnSums.isEmpty { finishers.append(runner) }
                }
            }
            return BoundStage(tasks: tasks, finishers: finishers, kind: kind)
        }
        stale = false
    }

    /// Whether a split product and its epilogue are cut by rows rather than by columns: when the
    /// product's B is small, so that every piece packing all of it costs little, and the kernel has no
    /// column sums (those are added per fixed row chunk). The epilogue then
    /// runs over whole rows; cut by columns, each 200-column piece of the [128,400] bias, relu and relu'
    /// after z·W₃ᵀ took as long (14 µs) as the whole kernel on one core.
    private static func cutsByRows(_ call: MatrixCall, _ kernel: FusedKernel) -> Bool {
        !call.transposedProduct && call.k * call.n <= 32_768 && kernel.columnSums.isEmpty && call.m >= 16
    }

    /// `m` rows in `parts` ranges as even as multiples of 8 (the GEMM's row panels) allow.
    private static func rowRanges(_ m: Int, parts: Int) -> [Range<Int>] {
        let cuts = (0...parts).map { p in p == parts ? m : (m * p / parts + 4) / 8 * 8 }
        return zip(cuts, cuts.dropFirst()).map { $0..<$1 }.filter { !$0.isEmpty }
    }

    // MARK: The plain interpreter

    /// Evaluates node by node, calling `inspect` after each (used by `vaec grad --values`).
    public func run(inspecting inspect: (ValueID, UnsafeBufferPointer<Float>) -> Void) {
        preparePlain()
        setHypers()
        for id in schedule {
            evaluate(id)
            let count = graph[id].shape.elementCount(batch: batch)
            inspect(id, UnsafeBufferPointer(start: buffers[id]!, count: count))
        }
    }

    private func preparePlain() {
        if plainPlan == nil {
            let p = MemoryPlan(plain: graph, schedule: schedule, batch: batch, pinned: pinnedOffsets)
            plainPlan = p
            plainArena = LargePages.zeroed(floats: p.arenaSize)
        }
        for (v, offset) in plainPlan!.arena { buffers[v] = plainArena! + offset }
    }

    private func evaluate(_ id: ValueID) {
        let node = graph[id]
        let out = buffers[id]!
        switch node.op {
        case .parameter(let name), .input(let name), .noise(let name):
            precondition(bound.contains(id), "leaf '\(name)' was not bound before running")
        case .constant, .hyper:
            break
        case .negate, .exp, .log, .square, .sqrt, .abs, .relu, .sigmoid, .tanh, .softplus, .positiveStep, .sign,
             .logGamma, .digamma, .trigamma, .cbLogNormalizer, .cbLogNormalizerSlope:
            Elementwise.unary(node.op, buffers[node.operands[0]]!, out, node.shape.elementCount(batch: batch))
        case .add, .subtract, .multiply, .divide, .maximum:
            let (a, b) = (graph[node.operands[0]].shape, graph[node.operands[1]].shape)
            Elementwise.binary(node.op,
                               Operand(buffers[node.operands[0]]!, Broadcast(a, to: node.shape)),
                               Operand(buffers[node.operands[1]]!, Broadcast(b, to: node.shape)),
                               out, rows: node.shape.batched ? batch : 1, columns: node.shape.featureCount)
        case .dense, .denseTransposed, .outerSum:
            let kernel = MatrixKernel(node: id, op: node.op, a: node.operands[0], b: node.operands[1])
            MatrixCall(kernel, graph, batch: batch) { self.buffers[$0]! }.run(threads: threads)
        case .conv2d, .conv2dTransposed, .conv2dFilter, .reshape, .channelsFirst, .channelsLast, .sumToChannels:
            ImageReference.evaluate(node, graph, batch: batch, operand: { UnsafePointer(self.buffers[node.operands[$0]]!) }, result: out)
        case .sumFeatures:
            let input = graph[node.operands[0]].shape
            Reductions.sumRows(buffers[node.operands[0]]!, out, rows: input.batched ? batch : 1, columns: input.featureCount)
        case .sumBatch:
            Reductions.sumColumns(buffers[node.operands[0]]!, out, rows: batch, columns: node.shape.featureCount)
        case .broadcast(let target):
            let source = graph[node.operands[0]].shape
            Elementwise.broadcast(Operand(buffers[node.operands[0]]!, Broadcast(source, to: target)), out,
                                  rows: target.batched ? batch : 1, columns: target.featureCount)
        }
    }
}

/// One stage of the bound kernel program: tasks run side by side (a reusable pool job when there are
/// several), then the partial column sums are added.
private final class BoundStage {
    let tasks: [(Int) -> Void]
    let finishers: [FusedKernelRunner]
    let kind: KernelProfile.Kind
    let job: WorkerPool.Job?

    init(tasks: [(Int) -> Void], finishers: [FusedKernelRunner], kind: KernelProfile.Kind) {
        self.tasks = tasks
        self.finishers = finishers
        self.kind = kind
        job = tasks.count > 1 ? WorkerPool.Job(count: tasks.count) { [tasks] task, thread in tasks[task](thread) } : nil
    }

    /// Runs the tasks with the pool's workers when the run holds the pool, else on this thread alone.
    @inline(__always) func run(_ pool: WorkerPool?) {
        if let job, let pool { pool.run(job) } else { for task in tasks { task(0) } }
        for f in finishers { f.finish() }
    }
}

/// Time spent per kind of kernel over the profiled runs.
public struct KernelProfile: Sendable {
    public enum Kind: String, Sendable, CaseIterable { case gemm, elementwise, image }
    public private(set) var seconds: [Kind: Double] = [:]
    public var runs = 0
    /// Seconds per stage of the kernel program, and what each stage runs.
    public internal(set) var stages: [Double] = []
    /// The fastest run of each stage (robust to other processes on a shared machine).
    public internal(set) var stageMinimum: [Double] = []
    public internal(set) var stageNames: [String] = []

    mutating func add(_ kind: Kind, _ s: Double) { seconds[kind, default: 0] += s }

    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }
}
