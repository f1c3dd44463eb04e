/// Turns source bytes into tokens. Comments run from `#` to the end of the line.
public struct Lexer {
    private let source: SourceFile
    private var position = 0

    public init(source: SourceFile) { self.source = source }

    /// Every keyword and operator the lexer knows; a test checks these against `Grammar/vae.ebnf`.
    public static var terminals: Set<String> {
        Set(Keyword.allCases.map(\.rawValue)).union(Symbol.allCases.map(\.rawValue))
    }

    public static func tokenize(_ source: SourceFile) throws(Diagnostic) -> [Token] {
        var lexer = Lexer(source: source)
        var tokens: [Token] = []
        while true {
            let token = try lexer.next()
            tokens.append(token)
            if token.kind == .endOfFile { return tokens }
        }
    }

    private var bytes: [UInt8] { source.bytes }

    mutating func next() throws(Diagnostic) -> Token {
        var sawNewline = position == 0
        // Skip white space and comments, noting line breaks.
        while position < bytes.count {
            let b = bytes[position]
            if b == UInt8(ascii: "\n") { sawNewline = true; position += 1 }
            else if b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") || b == UInt8(ascii: "\r") { position += 1 }
            else if b == UInt8(ascii: "#") {
                while position < bytes.count, bytes[position] != UInt8(ascii: "\n") { position += 1 }
            } else { break }
        }
        let start = position
        guard position < bytes.count else {
            return Token(kind: .endOfFile, range: SourceRange(start, start), startsLine: true)
        }
        let b = bytes[position]
        func make(_ kind: TokenKind) -> Token { Token(kind: kind, range: SourceRange(start, position), startsLine: sawNewline) }

        if isIdentifierStart(b) {
            while position < bytes.count, isIdentifierContinue(bytes[position]) { position += 1 }
            let word = String(decoding: bytes[start..<position], as: UTF8.self)
            if let keyword = Keyword(rawValue: word) { return make(.keyword(keyword)) }
            return make(.identifier(word))
        }
        if isDigit(b) || (b == UInt8(ascii: ".") && position + 1 < bytes.count && isDigit(bytes[position + 1])) {
            return make(.number(try lexNumber(start: start)))
        }
        if b == UInt8(ascii: "\"") { return make(.string(try lexString(start: start))) }
        if let symbol = Symbol(rawValue: String(UnicodeScalar(b))) {
            position += 1
            return make(.symbol(symbol))
        }
        // Consume one whole UTF-8 scalar so the caret covers the character.
        position += 1
        while position < bytes.count, bytes[position] & 0xC0 == 0x80 { position += 1 }
        let character = String(decoding: bytes[start..<position], as: UTF8.self)
        // Control characters (a binary file, a stray NUL) are named by code point: printed raw they
        // would garble the terminal.
        let shown = character.unicodeScalars.allSatisfy { $0.properties.generalCategory == .control }
            ? character.unicodeScalars.map { "U+" + String($0.value, radix: 16, uppercase: true).leftPadded(to: 4) }.joined()
            : "'\(character)'"
        throw Diagnostic("unexpected character \(shown)", at: SourceRange(start, position))
    }

    private mutating func lexNumber(start: Int) throws(Diagnostic) -> Double {
        while position < bytes.count, isDigit(bytes[position]) { position += 1 }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            while position < bytes.count, isDigit(bytes[position]) { position += 1 }
        }
        if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            var p = position + 1
            if p < bytes.count, bytes[p] == UInt8(ascii: "+") || bytes[p] == UInt8(ascii: "-") { p += 1 }
            guard p < bytes.count, isDigit(bytes[p]) else {
                throw Diagnostic("malformed number: an exponent needs digits", at: SourceRange(start, p))
            }
            while p < bytes.count, isDigit(bytes[p]) { p += 1 }
            position = p
        }
        if position < bytes.count, isIdentifierStart(bytes[position]) {
            var end = position
            while end < bytes.count, isIdentifierContinue(bytes[end]) { end += 1 }
            throw Diagnostic("malformed number", at: SourceRange(start, end))
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            throw Diagnostic("number '\(text)' is out of range", at: SourceRange(start, position))
        }
        return value
    }

    private mutating func lexString(start: Int) throws(Diagnostic) -> String {
        position += 1
        var content: [UInt8] = []
        while position < bytes.count {
            let b = bytes[position]
            if b == UInt8(ascii: "\"") { position += 1; return String(decoding: content, as: UTF8.self) }
            if b == UInt8(ascii: "\n") { break }
            if b == UInt8(ascii: "\\"), position + 1 < bytes.count {
                let escaped = bytes[position + 1]
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): content.append(escaped)
                case UInt8(ascii: "n"): content.append(UInt8(ascii: "\n"))
                case UInt8(ascii: "t"): content.append(UInt8(ascii: "\t"))
                default:
                    throw Diagnostic("unknown escape in string", at: SourceRange(position, position + 2))
                }
                position += 2
                continue
            }
            content.append(b)
            position += 1
        }
        throw Diagnostic("unterminated string", at: SourceRange(start, position), hint: "close it with '\"' on the same line")
    }

    private func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
    private func isIdentifierStart(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z")) || b == UInt8(ascii: "_")
    }
    private func isIdentifierContinue(_ b: UInt8) -> Bool { isIdentifierStart(b) || isDigit(b) }
}

private extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
