/// What each node of a graph is, for the pictures and listings of `vaec compile --dot` and `vaec grad`:
/// the kind of leaf, or whether an op belongs to the forward pass or to the backward sweep.
public enum NodeRole: Equatable, Sendable {
    case input, parameter, noise, hyper, constant
    /// Needed by an output other than a gradient (the loss, the metrics, the posterior, …).
    case forward
    /// Needed only by the `grad:` outputs: created by the backward sweep. (A value both passes use,
    /// such as a forward activation, is forward.)
    case gradient
    /// Needed by no output (only in graphs before dead-code elimination).
    case dead

    /// Every node's role. A node is forward when a non-gradient output depends on it, which needs no
    /// record of who created it and so stays true after any pass has rewritten the graph.
    public static func of(_ graph: Graph) -> [NodeRole] {
        let outputs = graph.outputs
        let forwardRoots = outputs.filter { !isGradientOutput($0.name) }.map(\.value)
        let forward = DeadCodePass.live(graph, outputs: forwardRoots)
        let live = DeadCodePass.live(graph, outputs: outputs.map(\.value))
        return graph.nodes.indices.map { id in
            switch graph[id].op {
            case .input: return .input
            case .parameter: return .parameter
            case .noise: return .noise
            case .hyper: return .hyper
            case .constant: return .constant
            default: return forward[id] ? .forward : (live[id] ? .gradient : .dead)
            }
        }
    }

    public static func isGradientOutput(_ name: String) -> Bool { name.hasPrefix(OutputName.gradient("")) }
}
