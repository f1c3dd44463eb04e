import Foundation

/// The loss as the gradient check evaluates it: the compiled graph's own ops, with two changes that
/// leave its derivative at θ alone but let a finite difference measure that derivative.
///
/// 1. **Kinks frozen.** A ReLU network's loss is piecewise smooth, and a step h·v that carries a unit
///    across relu's kink puts an error of order c·b/2 into the difference for that unit. On the MNIST
///    model a unit step of 10⁻³ relative still crossed a few of the 6400 decoder units, and the
///    differences were off by 2–4 % at every h tried, while a tanh model agreed to 10⁻⁴. So `freeze()`
///    records, at θ, which branch every relu, abs and max takes, element by element, and later runs use
///    those branches (relu(x) = m·x, abs(x) = s·x, max(a, b) = a or b). That is the smooth piece of the
///    loss θ lies on: equal to it near θ and with the same gradient wherever the gradient exists.
/// 2. **Reductions in Double.** In Float32 a per-example loss of ~550 nats is held to 6·10⁻⁵, the same
///    size as the change a small step makes. Every reduction here sums in Double, and the arithmetic
///    after a reduction (weighting and adding per-example terms into the loss, and the functions of
///    batch statistics such as σ-VAE's log σ*) runs on those Double values, each also rounded once into
///    its Float buffer for the ops that read it. Only the rounding of the per-element ops remains, and it
///    averages out over the elements.
final class SmoothLoss {
    let evaluator: GraphEvaluator
    private var graph: Graph { evaluator.graph }
    /// Per kinked node: the branch each element took at the frozen point.
    private var branches: [ValueID: [Bool]] = [:]
    private var frozen = false

    init(graph: Graph, point: EvaluationPoint) throws {
        evaluator = try GraphEvaluator(graph: graph, point: point, outputs: [OutputName.loss])
    }

    /// Records the branches at the current parameters; later `value()` calls keep them.
    func freeze() {
        frozen = false
        branches = [:]
        _ = evaluate(recording: true)
        frozen = true
    }

    /// The loss at the current parameters (in Double).
    func value() -> Double { evaluate(recording: false) }

    private func evaluate(recording: Bool) -> Double {
        let executable = evaluator.executable
        let batch = evaluator.point.batch
        guard let target = graph.output(OutputName.loss) else { return .nan }
        var exact: [ValueID: [Double]] = [:]
        executable.run { id, _ in
            let node = graph[id]
            let out = executable.buffers[id]!
            let count = node.shape.elementCount(batch: batch)
            let columns = max(node.shape.featureCount, 1)
            /// Element i of the result's layout read from operand k: its Double value when it has one.
            func read(_ k: Int, _ i: Int) -> Double {
                let o = node.operands[k]
                let j: Int
                switch Broadcast(graph[o].shape, to: node.shape) {
                case .full: j = i
                case .scalar: j = 0
                case .row: j = i % columns
                case .column: j = i / columns
                case .channel(let period): j = i % period
                }
                return exact[o]?[j] ?? Double(executable.buffers[o]![j])
            }
            let hasExactOperand = node.operands.contains { exact[$0] != nil }
            var result: [Double]?
            switch node.op {
            case .relu, .abs, .maximum:
                func branchesHere() -> [Bool] {
                    (0..<count).map { i in
                        switch node.op {
                        case .relu: return read(0, i) > 0
                        case .abs: return read(0, i) >= 0
                        default: return read(0, i) >= read(1, i)
                        }
                    }
                }
                if recording { branches[id] = branchesHere() }
                // Frozen: the recorded branches. Otherwise the node's own result stands, unless an
                // operand is held in Double (then it is recomputed from that).
                let taken: [Bool]
                if frozen, let recorded = branches[id] { taken = recorded } else if hasExactOperand { taken = branchesHere() } else { break }
                result = (0..<count).map { i in
                    switch node.op {
                    case .relu: return taken[i] ? read(0, i) : 0
                    case .abs: return taken[i] ? read(0, i) : -read(0, i)
                    default: return taken[i] ? read(0, i) : read(1, i)
                    }
                }
            case .sumFeatures, .sumBatch:
                let shape = graph[node.operands[0]].shape
                let source = node.operands[0]
                let rows = shape.batched ? batch : 1, width = shape.featureCount
                var sums = [Double](repeating: 0, count: count)
                for r in 0..<rows {
                    for c in 0..<width {
                        let v = exact[source]?[r * width + c] ?? Double(executable.buffers[source]![r * width + c])
                        sums[node.op == .sumFeatures ? r : c] += v
                    }
                }
                result = sums
            case .add, .subtract, .multiply, .divide:
                guard hasExactOperand else { break }
                result = (0..<count).map { i in
                    let (x, y) = (read(0, i), read(1, i))
                    switch node.op {
                    case .add: return x + y
                    case .subtract: return x - y
                    case .multiply: return x * y
                    default: return x / y
                    }
                }
            case .negate, .square, .exp, .log, .sqrt, .softplus, .sigmoid, .tanh:
                guard hasExactOperand else { break }
                result = (0..<count).map { i in
                    let x = read(0, i)
                    switch node.op {
                    case .negate: return -x
                    case .square: return x * x
                    case .exp: return Foundation.exp(x)
                    case .log: return Foundation.log(x)
                    case .sqrt: return x.squareRoot()
                    case .softplus: return x > 0 ? x + Foundation.log1p(Foundation.exp(-x)) : Foundation.log1p(Foundation.exp(x))
                    case .sigmoid: return 1 / (1 + Foundation.exp(-x))
                    default: return Foundation.tanh(x)
                    }
                }
            default:
                break
            }
            if let result {
                exact[id] = result
                for i in 0..<count { out[i] = Float(result[i]) }
            }
        }
        return exact[target]?.first ?? Double(executable.buffers[target]![0])
    }
}
