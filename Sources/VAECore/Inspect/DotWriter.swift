/// Graphviz DOT of an IR graph (`vaec compile --dot FILE`), in the spirit of micrograd's `draw_dot`:
/// one node per op labelled with its value id, mnemonic, shape, source name and line; edges run from
/// operand to result.
///
/// - Forward ops are pale green ellipses, ops of the backward sweep salmon rounded boxes (see
///   `NodeRole`); inputs, parameters and noise have shapes of their own, outputs are notes.
/// - Constants and hyper-parameters are drawn again at each use: one `0.5` feeding thirty ops would
///   otherwise pull thirty edges across the picture.
/// - `depth` keeps only the nodes within that many hops of an output; an operand cut off is drawn as a
///   dashed stub, so the picture shows where it was trimmed.
/// - `clusters` groups value ids into `subgraph cluster_k` boxes: the hook for fused kernels, which
///   the kernel lowering passes in once it exists. An id in several clusters is drawn in the first.
public struct DotWriter {
    public var title: String
    public var depth: Int?
    public var clusters: [[ValueID]]

    public init(title: String = "vaec", depth: Int? = nil, clusters: [[ValueID]] = []) {
        self.title = title
        self.depth = depth
        self.clusters = clusters
    }

    public func write(_ graph: Graph) -> String {
        let roles = NodeRole.of(graph)
        let hops = Self.hopsFromOutputs(graph)
        let outputValues = Set(graph.outputs.map(\.value))
        func kept(_ id: ValueID) -> Bool { depth.map { hops[id] <= $0 } ?? true }
        // Small leaves drawn at each use instead of once (unless an output is the leaf itself).
        func drawnPerUse(_ id: ValueID) -> Bool {
            (roles[id] == .constant || roles[id] == .hyper) && !outputValues.contains(id)
        }

        var out = ["digraph \(Self.quote(title)) {"]
        let counts = Dictionary(grouping: graph.nodes.indices.filter { kept($0) }, by: { roles[$0] }).mapValues(\.count)
        var caption = "\(title): \(counts[.forward, default: 0]) forward ops, \(counts[.gradient, default: 0]) gradient ops"
        if let depth { caption += ", within \(depth) hops of an output" }
        out.append("  label=\(Self.quote(caption)); labelloc=t; fontname=\"Helvetica\"; rankdir=TB;")
        out.append("  node [fontname=\"Helvetica\", fontsize=10]; edge [fontname=\"Helvetica\", fontsize=8, arrowsize=0.6];")

        // Nodes, those of a cluster inside its subgraph.
        var clusterOf: [ValueID: Int] = [:]
        for (k, members) in clusters.enumerated() {
            for id in members where graph.nodes.indices.contains(id) && clusterOf[id] == nil { clusterOf[id] = k }
        }
        var declared: Set<String> = []
        func declaration(_ id: ValueID) -> String {
            "\(Self.nodeID(id)) [\(Self.attributes(graph[id], id: id, role: roles[id]))];"
        }
        let drawn = graph.nodes.indices.filter { kept($0) && !drawnPerUse($0) }
        for (k, _) in clusters.enumerated() {
            let members = drawn.filter { clusterOf[$0] == k }
            guard !members.isEmpty else { continue }
            out.append("  subgraph cluster_\(k) {")
            out.append("    label=\"kernel \(k)\"; style=\"rounded,dashed\"; color=\"#3060c0\"; fontcolor=\"#3060c0\";")
            for id in members { out.append("    " + declaration(id)); declared.insert(Self.nodeID(id)) }
            out.append("  }")
        }
        for id in drawn where clusterOf[id] == nil {
            out.append("  " + declaration(id)); declared.insert(Self.nodeID(id))
        }

        // Edges, with stubs for operands beyond the depth and a fresh node per use of a small leaf.
        for id in drawn {
            let node = graph[id]
            let numbered = node.operands.count == 2 && !node.op.isCommutative
            for (position, operand) in node.operands.enumerated() {
                var source = Self.nodeID(operand)
                if drawnPerUse(operand) {
                    source = "\(Self.nodeID(operand))_use\(id)_\(position)"
                    let label = Self.leafText(graph[operand].op)
                    out.append("  \(source) [label=\(Self.quote(label)), shape=plaintext, fontsize=9, fontcolor=\"#555555\"];")
                } else if !kept(operand), !declared.contains(source) {
                    out.append("  \(source) [label=\(Self.quote("%\(operand) \(graph[operand].op.mnemonic) …")), shape=plaintext, style=dashed, fontcolor=\"#888888\"];")
                    declared.insert(source)
                }
                var attributes: [String] = []
                if numbered { attributes.append("label=\"\(position + 1)\"") }
                if roles[id] == .gradient { attributes.append("color=\"#b04020\"") }
                out.append("  \(source) -> \(Self.nodeID(id))" + (attributes.isEmpty ? ";" : " [\(attributes.joined(separator: ", "))];"))
            }
        }

        // Outputs as notes.
        for (index, output) in graph.outputs.enumerated() where kept(output.value) {
            let gradient = NodeRole.isGradientOutput(output.name)
            out.append("  out\(index) [label=\(Self.quote(output.name)), shape=note, style=filled, fillcolor=\(gradient ? "\"#f3b4a2\"" : "\"#b9e3b9\"")];")
            out.append("  \(Self.nodeID(output.value)) -> out\(index) [style=bold];")
        }
        out.append("}")
        return out.joined(separator: "\n") + "\n"
    }

    /// Hops from each node to the nearest output along operand edges (Int.max when none).
    static func hopsFromOutputs(_ graph: Graph) -> [Int] {
        var hops = [Int](repeating: Int.max, count: graph.nodes.count)
        for (_, value) in graph.outputs { hops[value] = 0 }
        // Operands precede their users, so one reverse sweep sees every user of a node before the node.
        for id in graph.nodes.indices.reversed() where hops[id] != Int.max {
            for operand in graph[id].operands { hops[operand] = min(hops[operand], hops[id] + 1) }
        }
        return hops
    }

    static func nodeID(_ id: ValueID) -> String { "n\(id)" }

    static func leafText(_ op: Op) -> String {
        switch op {
        case .constant(let v): return IRPrinter.format(v)
        case .hyper(let name): return name
        default: return op.mnemonic
        }
    }

    static func attributes(_ node: Node, id: ValueID, role: NodeRole) -> String {
        var lines: [String]
        switch node.op {
        case .input(let n), .parameter(let n), .noise(let n), .hyper(let n): lines = ["\(node.op.mnemonic) \(n)"]
        case .constant(let v): lines = ["const \(IRPrinter.format(v))"]
        default: lines = ["%\(id) \(node.op.mnemonic)"]
        }
        lines.append(node.shape.description)
        var source: [String] = []
        if let name = node.name, node.op.kind != .leaf { source.append(name) }
        if node.line > 0 { source.append("line \(node.line)") }
        if !source.isEmpty { lines.append(source.joined(separator: ", ")) }
        let label = "label=" + quote(lines.joined(separator: "\n"))
        let style: String
        switch role {
        case .input: style = "shape=invhouse, style=filled, fillcolor=\"#cfe3ff\""
        case .parameter: style = "shape=box, style=filled, fillcolor=\"#ffe9a8\""
        case .noise: style = "shape=diamond, style=filled, fillcolor=\"#e3d7f7\""
        case .hyper, .constant: style = "shape=plaintext"
        case .forward: style = "shape=ellipse, style=filled, fillcolor=\"#e4f3e4\""
        case .gradient: style = "shape=box, style=\"rounded,filled\", fillcolor=\"#f9d3c7\", color=\"#b04020\""
        case .dead: style = "shape=ellipse, style=dashed, fontcolor=\"#888888\""
        }
        return "\(label), \(style)"
    }

    /// A DOT string literal; a newline becomes DOT's `\n` (a centred line break).
    static func quote(_ text: String) -> String {
        var s = "\""
        for c in text {
            switch c {
            case "\"": s += "\\\""
            case "\\": s += "\\\\"
            case "\n": s += "\\n"
            default: s.append(c)
            }
        }
        return s + "\""
    }
}
