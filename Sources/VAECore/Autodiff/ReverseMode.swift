/// Reverse-mode differentiation of a scalar output with respect to every parameter: one backward sweep
/// over the graph in reverse order, accumulating adjoints, each op's contribution from `VJPRules`.
public enum ReverseMode {
    /// Adds the gradient nodes to `builder` and returns the gradient of `loss` for each parameter
    /// (a zero of the right shape for a parameter the loss does not depend on).
    public static func gradients(of loss: ValueID, withRespectTo parameters: [ValueID],
                                 in builder: inout GraphBuilder) -> [ValueID] {
        precondition(builder.shape(loss).isScalar, "the loss must be a scalar")
        let count = loss + 1
        // Only nodes on a path from a parameter to the loss need adjoints.
        var needed = [Bool](repeating: false, count: count)
        for p in parameters where p < count { needed[p] = true }
        for id in 0..<count where !needed[id] {
            needed[id] = builder.graph[id].operands.contains { needed[$0] }
        }
        var adjoint = [ValueID?](repeating: nil, count: count)
        adjoint[loss] = builder.constant(1)
        for id in stride(from: loss, through: 0, by: -1) {
            guard needed[id], let g = adjoint[id] else { continue }
            let node = builder.graph[id]
            builder.currentLine = node.line
            let contributions = VJPRules.pullback(of: id, adjoint: g, in: &builder)
            for (operand, contribution) in zip(node.operands, contributions) {
                guard let contribution, needed[operand] else { continue }
                if let existing = adjoint[operand] {
                    adjoint[operand] = builder.binary(.add, existing, contribution)
                } else {
                    adjoint[operand] = contribution
                }
                if let name = builder.graph[operand].name { builder.name(adjoint[operand]!, "d(\(name))") }
            }
        }
        return parameters.map { p in
            if p < count, let g = adjoint[p] { return g }
            return builder.add(.broadcast(builder.shape(p)), [builder.constant(0)])
        }
    }
}
