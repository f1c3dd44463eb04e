/// Recursive-descent parser for `Grammar/vae.ebnf`. On a syntax error it records one diagnostic and
/// skips to the start of the next line (panic mode, as in clox), so one typo gives one error.
public struct Parser {
    private let tokens: [Token]
    private var index = 0
    private(set) var diagnostics: [Diagnostic] = []
    /// How deeply the expression being parsed nests (parentheses, calls, signs, chained operators).
    private var depth = 0
    /// Deeper expressions are refused: the parser and the checker recurse once per level, and a
    /// file of 5000 '(' must give an error, not a stack overflow.
    public static let maximumExpressionDepth = 256

    private init(tokens: [Token]) { self.tokens = tokens }

    /// Parses a whole file. Throws `CompileFailure` if anything was wrong.
    public static func parse(_ source: SourceFile) throws(CompileFailure) -> ModelFile {
        let tokens: [Token]
        do { tokens = try Lexer.tokenize(source) } catch {
            throw CompileFailure(diagnostics: [error], source: source)
        }
        var parser = Parser(tokens: tokens)
        let file = parser.parseFile()
        if !parser.diagnostics.isEmpty { throw CompileFailure(diagnostics: parser.diagnostics, source: source) }
        return file
    }

    // MARK: token helpers

    private var current: Token { tokens[index] }
    private mutating func advance() -> Token {
        let token = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return token
    }
    private func check(_ symbol: Symbol) -> Bool { current.kind == .symbol(symbol) }
    private mutating func accept(_ symbol: Symbol) -> Bool {
        if check(symbol) { _ = advance(); return true }
        return false
    }
    private mutating func expect(_ symbol: Symbol, _ context: String) throws(Diagnostic) -> Token {
        guard check(symbol) else {
            throw Diagnostic("expected '\(symbol.rawValue)' \(context), found \(current.kind)", at: missingTokenRange)
        }
        return advance()
    }

    /// Where a missing token belongs: at the current token, unless that starts a new line, in which case
    /// just after the previous token (a ')' missing at the end of line 9 is reported on line 9, not 10).
    private var missingTokenRange: SourceRange {
        guard current.startsLine, index > 0 else { return current.range }
        let end = tokens[index - 1].range.end
        return SourceRange(end, end)
    }
    private mutating func expectIdentifier(_ context: String) throws(Diagnostic) -> Identifier {
        if case .identifier(let name) = current.kind {
            let token = advance()
            return Identifier(name: name, range: token.range)
        }
        if case .keyword(let k) = current.kind {
            throw Diagnostic("'\(k.rawValue)' is a keyword and cannot be used as \(context)", at: current.range)
        }
        throw Diagnostic("expected \(context), found \(current.kind)", at: current.range)
    }

    /// Skip to the first token of the next line (or a closing brace or end of file). `start` is where the
    /// failed statement began: when the error sits on a '}' or on the first token of a later line (a
    /// token missing at the end of a line), that token is kept, so the block still closes and the next
    /// statement is still read; at `start` itself one token is always skipped, so recovery progresses.
    private mutating func recover(stopAtBrace: Bool, from start: Int) {
        if index > start && (current.startsLine || (stopAtBrace && check(.rightBrace))) { return }
        _ = advance()
        while current.kind != .endOfFile {
            if current.startsLine { return }
            if stopAtBrace && check(.rightBrace) { return }
            _ = advance()
        }
    }

    // MARK: file and blocks

    private mutating func parseFile() -> ModelFile {
        var file = ModelFile()
        while current.kind != .endOfFile {
            let blockStart = index
            do {
                try parseBlock(into: &file)
            } catch {
                diagnostics.append(error)
                // Skip to the next top-level keyword that starts a line. A block keyword the error was
                // reported at (an unclosed block before it) is kept; parseBlock consumed at least one token
                // before throwing unless the current token is not a keyword, so this always progresses.
                repeat {
                    if current.startsLine && isBlockKeyword(current.kind) && index > blockStart { break }
                    _ = advance()
                } while current.kind != .endOfFile && !(current.startsLine && isBlockKeyword(current.kind))
            }
        }
        return file
    }

    private func isBlockKeyword(_ kind: TokenKind) -> Bool {
        if case .keyword = kind { return true }
        return false
    }

    private mutating func parseBlock(into file: inout ModelFile) throws(Diagnostic) {
        guard case .keyword(let keyword) = current.kind else {
            throw Diagnostic("expected a block (model, input, latent, encoder, decoder, objective or train), found \(current.kind)",
                             at: current.range)
        }
        let keywordRange = advance().range
        switch keyword {
        case .model:
            let name = try expectIdentifier("a model name")
            if let previous = file.modelName {
                throw Diagnostic("the model is already named '\(previous.name)'", at: name.range)
            }
            file.modelName = name
        case .input:
            let name = try expectIdentifier("an input name")
            _ = try expect(.colon, "after the input's name")
            file.inputs.append(InputDecl(name: name, shape: try parseShape()))
        case .latent:
            let name = try expectIdentifier("a latent name")
            _ = try expect(.colon, "after the latent's name")
            let shape = try parseShape()
            _ = try expect(.tilde, "before the latent's prior, as in 'latent z: [20] ~ normal(0, 1)'")
            let prior = try parseCallOnly("a prior distribution")
            file.latents.append(LatentDecl(name: name, shape: shape, prior: prior))
        case .encoder, .decoder:
            let block = try parseConditional(keyword: keywordRange, kind: keyword.rawValue)
            if keyword == .encoder { file.encoders.append(block) } else { file.decoders.append(block) }
        case .objective, .train:
            let block = try parseSettings(keyword: keywordRange, kind: keyword.rawValue)
            if keyword == .objective { file.objectives.append(block) } else { file.trains.append(block) }
        }
    }

    private mutating func parseShape() throws(Diagnostic) -> DeclaredShape {
        let open = try expect(.leftBracket, "to start a shape such as [784]")
        var dims: [Int] = []
        repeat {
            guard case .number(let v) = current.kind else {
                throw Diagnostic("expected a dimension (a positive whole number), found \(current.kind)", at: current.range)
            }
            guard v >= 1, v == v.rounded(), v <= 16_777_216 else {
                throw Diagnostic("a dimension must be a whole number from 1 to 16777216", at: current.range)
            }
            dims.append(Int(v))
            _ = advance()
        } while accept(.comma)
        let close = try expect(.rightBracket, "to close the shape")
        return DeclaredShape(dims: dims, range: open.range.union(close.range))
    }

    private mutating func parseConditional(keyword: SourceRange, kind: String) throws(Diagnostic) -> ConditionalBlock {
        let name = try expectIdentifier("the \(kind)'s name, as in '\(kind) \(kind == "encoder" ? "q(z | x)" : "p(x | z)")'")
        _ = try expect(.leftParen, "after the \(kind)'s name")
        let target = try expectIdentifier("the variable the \(kind) models")
        _ = try expect(.bar, "between the modelled and the given variable")
        let given = try expectIdentifier("the variable the \(kind) is given")
        _ = try expect(.rightParen, "to close the \(kind)'s signature")
        _ = try expect(.leftBrace, "to open the \(kind)'s body")
        var statements: [Statement] = []
        while !check(.rightBrace) {
            if current.kind == .endOfFile {
                throw Diagnostic("the \(kind) block is not closed: expected '}'", at: keyword)
            }
            if case .keyword = current.kind, current.startsLine, !startsStatement {
                throw Diagnostic("the \(kind) block is not closed before this block: expected '}'", at: current.range)
            }
            let statementStart = index
            do {
                statements.append(try parseStatement())
            } catch {
                diagnostics.append(error)
                recover(stopAtBrace: true, from: statementStart)
            }
        }
        _ = advance()
        return ConditionalBlock(keyword: keyword, name: name, target: target, given: given, statements: statements)
    }

    /// A keyword followed by '=' or '~' is a statement that misuses a keyword as its name, not a new block.
    private var startsStatement: Bool {
        let next = tokens[min(index + 1, tokens.count - 1)].kind
        return next == .symbol(.equals) || next == .symbol(.tilde)
    }

    private mutating func parseStatement() throws(Diagnostic) -> Statement {
        let name = try expectIdentifier("a statement ('name = expression' or 'name ~ distribution(...)')")
        if accept(.equals) { return .assign(name, try parseExpression()) }
        if accept(.tilde) { return .sample(name, try parseCallOnly("a distribution")) }
        throw Diagnostic("expected '=' or '~' after '\(name.name)', found \(current.kind)", at: current.range)
    }

    private mutating func parseSettings(keyword: SourceRange, kind: String) throws(Diagnostic) -> SettingsBlock {
        _ = try expect(.leftBrace, "to open the \(kind) block")
        var settings: [Setting] = []
        while !check(.rightBrace) {
            if current.kind == .endOfFile {
                throw Diagnostic("the \(kind) block is not closed: expected '}'", at: keyword)
            }
            if case .keyword = current.kind, current.startsLine {
                throw Diagnostic("the \(kind) block is not closed before this block: expected '}'", at: current.range)
            }
            let statementStart = index
            do {
                let key = try expectIdentifier("a setting name")
                _ = try expect(.colon, "after the setting '\(key.name)'")
                settings.append(Setting(key: key, value: try parseExpression()))
            } catch {
                diagnostics.append(error)
                recover(stopAtBrace: true, from: statementStart)
            }
        }
        _ = advance()
        return SettingsBlock(keyword: keyword, settings: settings)
    }

    // MARK: expressions

    private mutating func parseCallOnly(_ what: String) throws(Diagnostic) -> Call {
        let name = try expectIdentifier(what)
        guard check(.leftParen) else {
            throw Diagnostic("expected '(' after '\(name.name)': \(what) is written as a call", at: current.range)
        }
        return try parseCall(callee: name)
    }

    private mutating func parseCall(callee: Identifier) throws(Diagnostic) -> Call {
        _ = try expect(.leftParen, "")
        var arguments: [Argument] = []
        if !check(.rightParen) {
            repeat {
                var label: Identifier? = nil
                if tokens[min(index + 1, tokens.count - 1)].kind == .symbol(.colon) {
                    // A label may be a reserved word (linear's first parameter is `input`): before a
                    // ':' inside a call it cannot mean anything else.
                    switch current.kind {
                    case .identifier(let word): label = Identifier(name: word, range: current.range)
                    case .keyword(let word): label = Identifier(name: word.rawValue, range: current.range)
                    default: break
                    }
                    if label != nil { _ = advance(); _ = advance() }
                }
                let value = try parseExpression()
                if label == nil, arguments.contains(where: { $0.label != nil }) {
                    throw Diagnostic("a positional argument cannot follow a named one", at: value.range)
                }
                arguments.append(Argument(label: label, value: value))
            } while accept(.comma)
        }
        let close = try expect(.rightParen, "to close the call to '\(callee.name)'")
        return Call(callee: callee, arguments: arguments, range: callee.range.union(close.range))
    }

    /// Each chained operator deepens the (left-leaning) tree by one level, so it counts like a parenthesis.
    private mutating func parseExpression() throws(Diagnostic) -> Expression {
        let outer = depth
        defer { depth = outer }
        var lhs = try parseTerm()
        while true {
            let op: BinaryOperator
            if check(.plus) { op = .add } else if check(.minus) { op = .subtract } else { return lhs }
            try deepen()
            _ = advance()
            lhs = .binary(op, lhs, try parseTerm())
        }
    }

    private mutating func parseTerm() throws(Diagnostic) -> Expression {
        let outer = depth
        defer { depth = outer }
        var lhs = try parseUnary()
        while true {
            let op: BinaryOperator
            if check(.star) { op = .multiply } else if check(.slash) { op = .divide } else { return lhs }
            try deepen()
            _ = advance()
            lhs = .binary(op, lhs, try parseUnary())
        }
    }

    private mutating func deepen() throws(Diagnostic) {
        depth += 1
        guard depth <= Self.maximumExpressionDepth else {
            throw Diagnostic("the expression is nested too deeply: more than \(Self.maximumExpressionDepth) levels of parentheses, calls, signs or chained operators", at: current.range,
                             hint: "split it into several statements")
        }
    }

    private mutating func parseUnary() throws(Diagnostic) -> Expression {
        let outer = depth
        defer { depth = outer }
        try deepen()
        if check(.minus) {
            let minus = advance()
            let operand = try parseUnary()
            return .negate(operand, minus.range.union(operand.range))
        }
        return try parsePrimary()
    }

    private mutating func parsePrimary() throws(Diagnostic) -> Expression {
        switch current.kind {
        case .number(let v):
            return .number(v, advance().range)
        case .string(let s):
            return .string(s, advance().range)
        case .identifier(let name):
            let id = Identifier(name: name, range: advance().range)
            if check(.leftParen) { return .call(try parseCall(callee: id)) }
            return .name(id)
        case .symbol(.leftParen):
            _ = advance()
            let inner = try parseExpression()
            _ = try expect(.rightParen, "to close the parenthesis")
            return inner
        case .symbol(.leftBracket):
            let open = advance()
            var items: [Expression] = []
            repeat { items.append(try parseExpression()) } while accept(.comma)
            let close = try expect(.rightBracket, "to close the list")
            return .list(items, open.range.union(close.range))
        default:
            throw Diagnostic("expected an expression, found \(current.kind)", at: missingTokenRange)
        }
    }
}
