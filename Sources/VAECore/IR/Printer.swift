/// The IR's text form (`Grammar/ir.ebnf`): one line per node, deterministic, so dumps diff cleanly.
///
///     %3 = dense %0, %1 : [B,400]    # encoder.h @5
public enum IRPrinter {
    public static func print(_ graph: Graph, title: String? = nil) -> String {
        var lines: [String] = []
        if let title { lines.append("// \(title)") }
        for (id, node) in graph.nodes.enumerated() { lines.append(line(id, node)) }
        for (name, value) in graph.outputs { lines.append("output \(name) = %\(value)") }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func line(_ id: ValueID, _ node: Node) -> String {
        var text = "%\(id) = \(node.op.mnemonic)"
        switch node.op {
        case .input(let n), .parameter(let n), .noise(let n), .hyper(let n): text += " \"\(n)\""
        case .constant(let v): text += " \(format(v))"
        case .broadcast(let s): text += " \(s)"
        case .conv2d(let g), .conv2dTransposed(let g), .conv2dFilter(let g): text += " \(g)"
        case .reshape(let dims): text += " \(Shape(batched: false, dims))"
        default: break
        }
        if !node.operands.isEmpty { text += " " + node.operands.map { "%\($0)" }.joined(separator: ", ") }
        text += " : \(node.shape)"
        var comment: [String] = []
        if let name = node.name { comment.append(name) }
        if node.line > 0 { comment.append("@\(node.line)") }
        if !comment.isEmpty { text = text.padding(toLength: max(text.count, 44), withPad: " ", startingAt: 0) + "  # " + comment.joined(separator: " ") }
        return text
    }

    /// Shortest text that reads back to the same Float.
    static func format(_ v: Float) -> String {
        if v == v.rounded(), abs(v) < 1e7 { return String(Int(v)) }
        return "\(v)"
    }
}
