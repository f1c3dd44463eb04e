/// Rewrites numerically fragile compositions into stable primitives (PyTensor's "stabilize" stage):
///   log(sigmoid x) → −softplus(−x),  log(1 − sigmoid x) → −softplus(x),  log(exp x) → x.
/// Runs before and after differentiation.
public struct StabilizePass: Pass {
    public let name = "stabilize"
    public init() {}

    public func run(_ graph: Graph) -> Graph {
        Rewriter.run(graph) { b, node, operands in
            guard node.op == .log else { return nil }
            let inner = b.graph[operands[0]]
            switch inner.op {
            case .sigmoid:
                return b.unary(.negate, b.unary(.softplus, b.unary(.negate, inner.operands[0])))
            case .exp:
                return inner.operands[0]
            case .subtract:
                let (one, s) = (b.graph[inner.operands[0]], b.graph[inner.operands[1]])
                if one.op == .constant(1), s.op == .sigmoid, inner.shape == s.shape {
                    return b.unary(.negate, b.unary(.softplus, s.operands[0]))
                }
                return nil
            default:
                return nil
            }
        }
    }
}
