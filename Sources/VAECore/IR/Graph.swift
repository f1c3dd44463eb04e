/// An SSA value: the result of one node.
public typealias ValueID = Int

/// One operation in the graph. Operands always precede the node, so the node order is a valid schedule.
public struct Node: Hashable, Codable, Sendable {
    public var op: Op
    public var operands: [ValueID]
    public var shape: Shape
    /// The source name of the value where there is one (`encoder.h`, `d(encoder.h)`), for dumps.
    public var name: String?
    /// The source line the op came from (0 when none).
    public var line: Int
}

/// A typed, shaped SSA graph with named outputs (the loss, the metrics, one gradient per parameter).
public struct Graph: Codable, Sendable {
    public private(set) var nodes: [Node] = []
    /// Named results, in a fixed order (order matters for deterministic printing).
    public var outputs: [(name: String, value: ValueID)] {
        get { zip(outputNames, outputValues).map { ($0, $1) } }
    }
    private var outputNames: [String] = []
    private var outputValues: [ValueID] = []

    public init() {}

    public subscript(id: ValueID) -> Node { nodes[id] }

    /// Whether output names and values pair up (a decoded file could hold lists of different lengths).
    var outputsArePaired: Bool { outputNames.count == outputValues.count }

    public func output(_ name: String) -> ValueID? {
        outputNames.firstIndex(of: name).map { outputValues[$0] }
    }

    public mutating func setOutput(_ name: String, _ value: ValueID) {
        if let i = outputNames.firstIndex(of: name) { outputValues[i] = value } else {
            outputNames.append(name); outputValues.append(value)
        }
    }

    mutating func append(_ node: Node) -> ValueID {
        nodes.append(node)
        return nodes.count - 1
    }

    mutating func rename(_ id: ValueID, _ name: String) { nodes[id].name = name }
}

/// Builds graphs. Identical (op, operands) pairs are hash-consed into one node, which is
/// common-subexpression elimination for free; shapes are inferred by `ShapeRules` as nodes are added.
public struct GraphBuilder {
    public private(set) var graph = Graph()
    private var existing: [Key: ValueID] = [:]
    /// Line attached to new nodes (the statement being lowered).
    public var currentLine = 0

    private struct Key: Hashable { let op: Op; let operands: [ValueID] }

    public init() {}

    /// Adds a node (or finds its twin). Shapes must already be valid: callers check user input first
    /// with `ShapeRules.infer`, so a failure here is a compiler bug.
    @discardableResult
    public mutating func add(_ op: Op, _ operands: [ValueID] = [], name: String? = nil, shape: Shape? = nil) -> ValueID {
        var operands = operands
        if op.isCommutative, operands.count == 2, operands[0] > operands[1] { operands.swapAt(0, 1) }
        let key = Key(op: op, operands: operands)
        if let id = existing[key] {
            if graph[id].name == nil, let name { graph.rename(id, name) }
            return id
        }
        let resolved: Shape
        if let shape { resolved = shape } else {
            do { resolved = try ShapeRules.infer(op, operands.map { graph[$0].shape }) } catch {
                fatalError("internal compiler error: \(op.mnemonic) \(operands.map { graph[$0].shape }): \(error.message)")
            }
        }
        let id = graph.append(Node(op: op, operands: operands, shape: resolved, name: name, line: currentLine))
        existing[key] = id
        return id
    }

    public func shape(_ id: ValueID) -> Shape { graph[id].shape }

    public mutating func setOutput(_ name: String, _ value: ValueID) { graph.setOutput(name, value) }

    public mutating func name(_ id: ValueID, _ name: String) {
        if graph[id].name == nil { graph.rename(id, name) }
    }

    // Convenience constructors used by the checker, the VJP rules and the passes.
    public mutating func constant(_ v: Float) -> ValueID { add(.constant(v)) }
    public mutating func unary(_ op: Op, _ x: ValueID) -> ValueID { add(op, [x]) }
    public mutating func binary(_ op: Op, _ a: ValueID, _ b: ValueID) -> ValueID { add(op, [a, b]) }
}
