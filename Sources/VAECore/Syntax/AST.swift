/// The syntax tree of a `.vae` file, as written (names unresolved, shapes unchecked).

public struct Identifier: Hashable, Sendable {
    public let name: String
    public let range: SourceRange
}

public indirect enum Expression: Sendable {
    case number(Double, SourceRange)
    case string(String, SourceRange)
    case name(Identifier)
    case negate(Expression, SourceRange)
    case binary(BinaryOperator, Expression, Expression)
    case call(Call)
    /// `[64, 7, 7]`: a shape for `reshape`, or a kernel or stride `[3, 3]`. Never a tensor itself.
    case list([Expression], SourceRange)

    public var range: SourceRange {
        switch self {
        case .number(_, let r), .string(_, let r), .negate(_, let r), .list(_, let r): return r
        case .name(let id): return id.range
        case .binary(_, let lhs, let rhs): return lhs.range.union(rhs.range)
        case .call(let call): return call.range
        }
    }

    /// The value of an expression made of numbers and arithmetic (`7 * 7 * 64`, `1/255`); nil when it
    /// is not constant or not finite.
    var constantValue: Double? {
        switch self {
        case .number(let v, _): return v
        case .negate(let inner, _): return inner.constantValue.map { -$0 }
        case .binary(let op, let a, let b):
            guard let x = a.constantValue, let y = b.constantValue else { return nil }
            let r: Double = switch op {
            case .add: x + y
            case .subtract: x - y
            case .multiply: x * y
            case .divide: x / y
            }
            return r.isFinite ? r : nil
        case .string, .name, .call, .list: return nil
        }
    }
}

public enum BinaryOperator: String, Sendable { case add = "+", subtract = "-", multiply = "*", divide = "/" }

public struct Argument: Sendable {
    public let label: Identifier?
    public let value: Expression
}

public struct Call: Sendable {
    public let callee: Identifier
    public let arguments: [Argument]
    public let range: SourceRange
}

/// `name = expression` or `name ~ distribution(...)` inside an encoder or decoder.
public enum Statement: Sendable {
    case assign(Identifier, Expression)
    case sample(Identifier, Call)
}

/// `key: value` in an `objective` or `train` block.
public struct Setting: Sendable {
    public let key: Identifier
    public let value: Expression
}

/// `encoder q(z | x) { … }`: the conditional it defines and its statements.
public struct ConditionalBlock: Sendable {
    public let keyword: SourceRange
    public let name: Identifier
    public let target: Identifier
    public let given: Identifier
    public let statements: [Statement]
}

public struct DeclaredShape: Sendable {
    public let dims: [Int]
    public let range: SourceRange
}

public struct InputDecl: Sendable {
    public let name: Identifier
    public let shape: DeclaredShape
}

public struct LatentDecl: Sendable {
    public let name: Identifier
    public let shape: DeclaredShape
    public let prior: Call
}

public struct SettingsBlock: Sendable {
    public let keyword: SourceRange
    public let settings: [Setting]
}

public struct ModelFile: Sendable {
    public var modelName: Identifier?
    public var inputs: [InputDecl] = []
    public var latents: [LatentDecl] = []
    public var encoders: [ConditionalBlock] = []
    public var decoders: [ConditionalBlock] = []
    public var objectives: [SettingsBlock] = []
    public var trains: [SettingsBlock] = []
}
