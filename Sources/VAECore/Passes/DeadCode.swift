/// Dead-code elimination: keeps only nodes an output depends on.
public struct DeadCodePass: Pass {
    public let name = "dce"
    public init() {}

    public func run(_ graph: Graph) -> Graph {
        Rewriter.run(graph, keep: Self.live(graph, outputs: graph.outputs.map(\.value))) { _, _, _ in nil }
    }

    static func live(_ graph: Graph, outputs: [ValueID]) -> [Bool] {
        var live = [Bool](repeating: false, count: graph.nodes.count)
        for o in outputs { live[o] = true }
        for id in stride(from: graph.nodes.count - 1, through: 0, by: -1) where live[id] {
            for operand in graph[id].operands { live[operand] = true }
        }
        return live
    }
}

/// Common-subexpression elimination: a replay through the hash-consing builder.
public struct CSEPass: Pass {
    public let name = "cse"
    public init() {}
    public func run(_ graph: Graph) -> Graph { Rewriter.run(graph) { _, _, _ in nil } }
}
