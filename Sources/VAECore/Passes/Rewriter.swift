/// Replays a graph node by node into a fresh builder, letting a pass substitute any node. Because the
/// builder hash-conses, every replay is also a CSE pass.
struct Rewriter {
    var builder = GraphBuilder()
    /// Old value id → new value id.
    var map: [ValueID] = []

    /// `rewrite` sees each node with its operands already mapped and returns a replacement, or nil
    /// to keep the node as it is.
    static func run(_ graph: Graph, keep: [Bool]? = nil,
                    rewrite: (inout GraphBuilder, Node, [ValueID]) -> ValueID?) -> Graph {
        var r = Rewriter()
        r.map = Array(repeating: -1, count: graph.nodes.count)
        for (id, node) in graph.nodes.enumerated() {
            if let keep, !keep[id] { continue }
            let operands = node.operands.map { r.map[$0] }
            r.builder.currentLine = node.line
            if let replacement = rewrite(&r.builder, node, operands) {
                r.map[id] = replacement
                if let name = node.name { r.builder.name(replacement, name) }
            } else {
                let leafShape: Shape? = node.op.kind == .leaf ? node.shape : nil
                r.map[id] = r.builder.add(node.op, operands, name: node.name, shape: leafShape)
            }
        }
        for (name, value) in graph.outputs { r.builder.setOutput(name, r.map[value]) }
        return r.builder.graph
    }
}

/// A named graph-to-graph transformation; `vaec compile --dump-after NAME` prints the graph after it.
public protocol Pass {
    var name: String { get }
    func run(_ graph: Graph) -> Graph
}
