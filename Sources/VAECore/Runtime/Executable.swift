import Foundation

/// A graph instantiated for one batch size: every value needed for the requested outputs gets a buffer
/// allocated once, so a step allocates nothing. Parameters, the data batch and the noise are bound to
/// external memory (no copies).
public final class Executable {
    public let graph: Graph
    public let batch: Int
    public let threads: Int
    /// Nodes evaluated each run, in order.
    let schedule: [ValueID]
    /// Buffer of each node (nil for nodes not needed).
    private(set) var buffers: [UnsafeMutablePointer<Float>?]
    private var owned: [UnsafeMutablePointer<Float>] = []
    /// Nodes whose buffers belong to the caller (parameters, input, noise).
    private var bound: Set<ValueID> = []
    private var hyperValues: [String: Float] = [:]

    public init(graph: Graph, outputs: [String], batch: Int, threads: Int = 1) {
        self.graph = graph
        self.batch = batch
        self.threads = max(1, threads)
        let roots = outputs.compactMap { graph.output($0) }
        let live = DeadCodePass.live(graph, outputs: roots)
        schedule = (0..<graph.nodes.count).filter { live[$0] }
        buffers = Array(repeating: nil, count: graph.nodes.count)
        for id in schedule {
            let node = graph[id]
            switch node.op {
            case .parameter, .input, .noise: continue    // bound by the caller
            default:
                let count = node.shape.elementCount(batch: batch)
                let buffer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
                buffer.initialize(repeating: 0, count: max(count, 1))
                if case .constant(let v) = node.op { buffer.pointee = v }
                owned.append(buffer)
                buffers[id] = buffer
            }
        }
    }

    deinit { for b in owned { b.deallocate() } }

    /// Leaves of a kind, by name (e.g. every `.parameter`), for binding.
    public func leaves(where match: (Op) -> String?) -> [(name: String, id: ValueID)] {
        schedule.compactMap { id in match(graph[id].op).map { ($0, id) } }
    }

    /// Binds a leaf (parameter, input or noise) to memory the caller owns and keeps alive.
    public func bind(_ id: ValueID, to pointer: UnsafeMutablePointer<Float>) {
        buffers[id] = pointer
        bound.insert(id)
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

    /// Evaluates every scheduled node.
    public func run() {
        for id in schedule { evaluate(id) }
    }

    /// Evaluates node by node, calling `inspect` after each (used by `vaec grad --values`).
    public func run(inspecting inspect: (ValueID, UnsafeBufferPointer<Float>) -> Void) {
        for id in schedule {
            evaluate(id)
            let count = graph[id].shape.elementCount(batch: batch)
            inspect(id, UnsafeBufferPointer(start: buffers[id]!, count: count))
        }
    }

    private func evaluate(_ id: ValueID) {
        let node = graph[id]
        let out = buffers[id]!
        let count = node.shape.elementCount(batch: batch)
        switch node.op {
        case .parameter(let name), .input(let name), .noise(let name):
            precondition(bound.contains(id), "leaf '\(name)' was not bound before running")
        case .constant:
            break
        case .hyper(let name):
            out.pointee = hyperValues[name] ?? .nan
        case .negate, .exp, .log, .square, .sqrt, .abs, .relu, .sigmoid, .tanh, .softplus, .positiveStep, .sign,
             .logGamma, .digamma, .trigamma, .cbLogNormalizer, .cbLogNormalizerSlope:
            Elementwise.unary(node.op, buffers[node.operands[0]]!, out, count)
        case .add, .subtract, .multiply, .divide, .maximum:
            let (a, b) = (graph[node.operands[0]].shape, graph[node.operands[1]].shape)
            Elementwise.binary(node.op,
                               Operand(buffers[node.operands[0]]!, Broadcast(a, to: node.shape)),
                               Operand(buffers[node.operands[1]]!, Broadcast(b, to: node.shape)),
                               out, rows: node.shape.batched ? batch : 1, columns: node.shape.featureCount)
        case .dense:
            let w = graph[node.operands[1]].shape.dims          // [n, k]
            GEMM.multiply(transposeA: false, transposeB: true, m: batch, n: w[0], k: w[1], alpha: 1,
                          a: buffers[node.operands[0]]!, lda: w[1], b: buffers[node.operands[1]]!, ldb: w[1],
                          beta: 0, c: out, ldc: w[0], threads: threads)
        case .denseTransposed:
            let w = graph[node.operands[1]].shape.dims          // [n, k]
            GEMM.multiply(transposeA: false, transposeB: false, m: batch, n: w[1], k: w[0], alpha: 1,
                          a: buffers[node.operands[0]]!, lda: w[0], b: buffers[node.operands[1]]!, ldb: w[1],
                          beta: 0, c: out, ldc: w[1], threads: threads)
        case .outerSum:
            let n = graph[node.operands[0]].shape.featureCount, k = graph[node.operands[1]].shape.featureCount
            GEMM.multiply(transposeA: true, transposeB: false, m: n, n: k, k: batch, alpha: 1,
                          a: buffers[node.operands[0]]!, lda: n, b: buffers[node.operands[1]]!, ldb: k,
                          beta: 0, c: out, ldc: k, threads: threads)
        case .sumFeatures:
            let input = graph[node.operands[0]].shape
            Reductions.sumRows(buffers[node.operands[0]]!, out, rows: input.batched ? batch : 1, columns: input.featureCount)
        case .sumBatch:
            Reductions.sumColumns(buffers[node.operands[0]]!, out, rows: batch, columns: node.shape.featureCount)
        case .broadcast(let target):
            let source = graph[node.operands[0]].shape
            Elementwise.broadcast(Operand(buffers[node.operands[0]]!, Broadcast(source, to: target)), out,
                                  rows: target.batched ? batch : 1, columns: target.featureCount)
            _ = count
        }
    }
}
