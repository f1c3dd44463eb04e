/// Algebraic simplification: identities (x·1, x+0, −(−x), x/1), scalar constant folding, and
/// products with zero. A rewrite never changes a value's shape, so no broadcast is lost.
public struct SimplifyPass: Pass {
    public let name = "simplify"
    public init() {}

    public func run(_ graph: Graph) -> Graph {
        Rewriter.run(graph) { b, node, operands in
            func constant(_ id: ValueID) -> Float? {
                if case .constant(let v) = b.graph[id].op { return v }
                return nil
            }
            func same(_ id: ValueID) -> ValueID? { b.shape(id) == node.shape ? id : nil }
            switch node.op {
            case .negate:
                if let v = constant(operands[0]) { return b.constant(-v) }
                if b.graph[operands[0]].op == .negate { return b.graph[operands[0]].operands[0] }
            case .add:
                let (x, y) = (operands[0], operands[1])
                if let u = constant(x), let v = constant(y) { return b.constant(u + v) }
                if constant(x) == 0, let r = same(y) { return r }
                if constant(y) == 0, let r = same(x) { return r }
            case .subtract:
                let (x, y) = (operands[0], operands[1])
                if let u = constant(x), let v = constant(y) { return b.constant(u - v) }
                if constant(y) == 0, let r = same(x) { return r }
                if constant(x) == 0, same(y) != nil { return b.unary(.negate, y) }
            case .multiply:
                let (x, y) = (operands[0], operands[1])
                if let u = constant(x), let v = constant(y) { return b.constant(u * v) }
                if constant(x) == 1, let r = same(y) { return r }
                if constant(y) == 1, let r = same(x) { return r }
                if constant(x) == -1, same(y) != nil { return b.unary(.negate, y) }
                if constant(y) == -1, same(x) != nil { return b.unary(.negate, x) }
                // c1 · (c2 · x) → (c1·c2) · x
                if let u = constant(x), b.graph[y].op == .multiply, let v = constant(b.graph[y].operands[0]) {
                    return b.binary(.multiply, b.constant(u * v), b.graph[y].operands[1])
                }
            case .divide:
                let (x, y) = (operands[0], operands[1])
                if let u = constant(x), let v = constant(y), v != 0 { return b.constant(u / v) }
                if constant(y) == 1, let r = same(x) { return r }
            case .exp, .log, .sqrt, .square:
                if let v = constant(operands[0]) {
                    let r: Float = switch node.op {
                    case .exp: Float.exp(v)
                    case .log: Float.log(v)
                    case .sqrt: v.squareRoot()
                    default: v * v
                    }
                    if r.isFinite { return b.constant(r) }
                }
            default:
                break
            }
            return nil
        }
    }
}

private extension Float {
    static func exp(_ v: Float) -> Float { Float(Foundation.exp(Double(v))) }
    static func log(_ v: Float) -> Float { Float(Foundation.log(Double(v))) }
}
import Foundation
