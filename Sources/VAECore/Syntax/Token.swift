/// The lexical units of the `.vae` language.
public enum TokenKind: Equatable, Sendable {
    case identifier(String)
    case keyword(Keyword)
    case number(Double)
    case string(String)
    case symbol(Symbol)
    case endOfFile
}

/// Words reserved by the grammar (`Grammar/vae.ebnf`). Settings such as `reconstruction` or `beta` are
/// ordinary identifiers: the checker gives them meaning, so new settings never break old files.
public enum Keyword: String, CaseIterable, Sendable {
    case model, input, latent, encoder, decoder, objective, train
}

/// Operators and punctuation, spelled as in the grammar.
public enum Symbol: String, CaseIterable, Sendable {
    case plus = "+", minus = "-", star = "*", slash = "/"
    case equals = "=", tilde = "~", colon = ":", comma = ",", bar = "|"
    case leftParen = "(", rightParen = ")", leftBrace = "{", rightBrace = "}"
    case leftBracket = "[", rightBracket = "]"
}

public struct Token: Equatable, Sendable {
    public let kind: TokenKind
    public let range: SourceRange
    /// True when a newline separates this token from the previous one (used for error recovery).
    public let startsLine: Bool
}

extension TokenKind: CustomStringConvertible {
    public var description: String {
        switch self {
        case .identifier(let name): return "'\(name)'"
        case .keyword(let k): return "'\(k.rawValue)'"
        case .number(let v): return "number \(v)"
        case .string(let s): return "string \"\(s)\""
        case .symbol(let s): return "'\(s.rawValue)'"
        case .endOfFile: return "end of file"
        }
    }
}
