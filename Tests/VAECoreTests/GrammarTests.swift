import Foundation
import XCTest
@testable import VAECore

/// Keeps `Grammar/vae.ebnf` and the parser in step: the samples parse and check, the grammar's keywords
/// and operators are exactly the lexer's, the grammar is closed (every rule used is defined and the
/// reverse), and random sentences of the grammar parse.
final class GrammarTests: XCTestCase {
    func testEverySampleParsesAndChecks() throws {
        let samples = try TestPaths.files(in: TestPaths.samples, withExtension: "vae")
        XCTAssertFalse(samples.isEmpty, "no samples/*.vae found")
        for sample in samples {
            do {
                _ = try Compiler.compile(path: sample.path)
            } catch let failure as CompileFailure {
                XCTFail("\(sample.lastPathComponent) does not compile:\n\(failure.formatted())")
            }
        }
    }

    /// Both directions: a keyword or operator added to the lexer but not the grammar fails, and the reverse.
    func testGrammarTerminalsAreExactlyTheLexersKeywordsAndOperators() throws {
        let grammar = try EBNF.load()
        let terminals = grammar.terminals(inSection: .syntax)
        let lexer = Lexer.terminals
        XCTAssertEqual(terminals.subtracting(lexer).sorted(), [],
                       "terminals in Grammar/vae.ebnf that the lexer does not know as a keyword or operator")
        XCTAssertEqual(lexer.subtracting(terminals).sorted(), [],
                       "keywords or operators of the lexer missing from Grammar/vae.ebnf")
        // The grammar's `keyword` rule lists exactly the reserved words.
        let keywordRule = try XCTUnwrap(grammar.rules["keyword"], "the grammar has no 'keyword' rule")
        XCTAssertEqual(keywordRule.terminals, Set(Keyword.allCases.map(\.rawValue)))
    }

    func testEveryRuleUsedIsDefinedAndEveryRuleDefinedIsUsed() throws {
        let grammar = try EBNF.load()
        let defined = Set(grammar.rules.keys)
        var used: Set<String> = []
        for rule in grammar.rules.values { used.formUnion(rule.body.nonterminals) }
        XCTAssertEqual(used.subtracting(defined).sorted(), [], "rules used but not defined")
        // Start symbols: the file, and the lexical items that may sit between tokens.
        let roots: Set<String> = ["file", "white_space", "comment"]
        XCTAssertEqual(defined.subtracting(used).subtracting(roots).sorted(), [], "rules defined but never used")
    }

    /// 400 random files generated from the grammar (identifiers, numbers and strings from its lexical
    /// rules, random line breaks and comments between tokens): the parser accepts every one.
    func testRandomSentencesOfTheGrammarParse() throws {
        let grammar = try EBNF.load()
        var generator = SentenceGenerator(grammar: grammar, random: RandomSource(seed: 7))
        for _ in 0..<400 {
            let text = generator.sentence(of: "file")
            do {
                _ = try Parser.parse(SourceFile(path: "generated.vae", text: text))
            } catch {
                XCTFail("a sentence of Grammar/vae.ebnf does not parse:\n\(text)\n\(error.formatted())")
                return
            }
        }
    }

    /// The generator really covers the grammar: every syntax rule and every terminal shows up.
    func testTheSentenceGeneratorReachesEveryRuleAndTerminal() throws {
        let grammar = try EBNF.load()
        var generator = SentenceGenerator(grammar: grammar, random: RandomSource(seed: 7))
        for _ in 0..<400 { _ = generator.sentence(of: "file") }
        let syntaxRules = Set(grammar.rules.values.filter { $0.section == .syntax }.map(\.name))
        XCTAssertEqual(syntaxRules.subtracting(generator.expandedRules).sorted(), [])
        XCTAssertEqual(grammar.terminals(inSection: .syntax).subtracting(generator.emittedTerminals).sorted(), [])
    }

    /// Words such as `reconstruction` or `beta` are identifiers, not keywords: a model may use them as names.
    func testSettingNamesAreOrdinaryIdentifiers() throws {
        let tokens = try Lexer.tokenize(SourceFile(path: "t.vae", text: "reconstruction beta kl_reduction data"))
        for token in tokens.dropLast() {
            guard case .identifier = token.kind else { return XCTFail("\(token.kind) is not an identifier") }
        }
    }
}

// MARK: - A small reader for the ISO-style EBNF of Grammar/vae.ebnf

/// The parts of an EBNF rule body.
indirect enum EBNFNode {
    case terminal(String)
    case nonterminal(String)
    /// `? … ?`: a set of characters described in words.
    case special(String)
    case sequence([EBNFNode])
    case choice([EBNFNode])
    case optional(EBNFNode)
    case repetition(EBNFNode)
    /// `a - b`: an a that is not a b.
    case except(EBNFNode, EBNFNode)

    var nonterminals: Set<String> {
        switch self {
        case .terminal, .special: return []
        case .nonterminal(let n): return [n]
        case .sequence(let items), .choice(let items): return items.reduce(into: []) { $0.formUnion($1.nonterminals) }
        case .optional(let n), .repetition(let n): return n.nonterminals
        case .except(let a, let b): return a.nonterminals.union(b.nonterminals)
        }
    }

    var terminals: Set<String> {
        switch self {
        case .terminal(let t): return [t]
        case .nonterminal, .special: return []
        case .sequence(let items), .choice(let items): return items.reduce(into: []) { $0.formUnion($1.terminals) }
        case .optional(let n), .repetition(let n): return n.terminals
        case .except(let a, let b): return a.terminals.union(b.terminals)
        }
    }
}

struct EBNFRule {
    enum Section { case syntax, lexical }
    let name: String
    let body: EBNFNode
    let section: Section
    var terminals: Set<String> { body.terminals }
}

struct EBNF {
    struct Malformed: Error, CustomStringConvertible { let description: String }

    var rules: [String: EBNFRule] = [:]

    static func load(_ url: URL = TestPaths.grammar) throws -> EBNF {
        try EBNF(text: String(contentsOf: url, encoding: .utf8))
    }

    /// Quoted terminals of one section's rules (the syntax section's are the keywords and operators).
    func terminals(inSection section: EBNFRule.Section) -> Set<String> {
        rules.values.filter { $0.section == section }.reduce(into: []) { $0.formUnion($1.terminals) }
    }

    /// Sections are marked by the comments `(* ==== syntax ==== *)` and `(* ==== lexical ==== *)`.
    init(text: String) throws {
        guard let syntaxMark = text.range(of: "(* ==== syntax ==== *)"),
              let lexicalMark = text.range(of: "(* ==== lexical ==== *)"),
              syntaxMark.upperBound <= lexicalMark.lowerBound else {
            throw Malformed(description: "Grammar/vae.ebnf lacks its '==== syntax ====' and '==== lexical ====' markers")
        }
        for (section, part) in [(EBNFRule.Section.syntax, text[syntaxMark.upperBound..<lexicalMark.lowerBound]),
                                (.lexical, text[lexicalMark.upperBound...])] {
            var tokens = try EBNF.tokenize(String(part))
            while !tokens.isEmpty {
                guard tokens.count >= 2, case .name(let name) = tokens[0], tokens[1] == .symbol("=") else {
                    throw Malformed(description: "expected 'name =' at \(tokens.prefix(3))")
                }
                tokens.removeFirst(2)
                var reader = BodyReader(tokens: tokens)
                let body = try reader.choice()
                guard reader.position < reader.tokens.count, reader.tokens[reader.position] == .symbol(";") else {
                    throw Malformed(description: "rule '\(name)' does not end with ';'")
                }
                tokens = Array(reader.tokens[(reader.position + 1)...])
                guard rules[name] == nil else { throw Malformed(description: "rule '\(name)' is defined twice") }
                rules[name] = EBNFRule(name: name, body: body, section: section)
            }
        }
    }

    enum Token: Equatable { case name(String), terminal(String), special(String), symbol(Character) }

    /// Splits rule text into names, quoted terminals, special sequences and symbols; drops `(* … *)`.
    static func tokenize(_ text: String) throws -> [Token] {
        var tokens: [Token] = []
        let chars = Array(text)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c.isWhitespace { i += 1; continue }
            if c == "(", i + 1 < chars.count, chars[i + 1] == "*" {
                var j = i + 2
                while j + 1 < chars.count, !(chars[j] == "*" && chars[j + 1] == ")") { j += 1 }
                guard j + 1 < chars.count else { throw Malformed(description: "unclosed comment") }
                i = j + 2
                continue
            }
            if c == "\"" || c == "'" || c == "?" {
                guard let end = chars[(i + 1)...].firstIndex(of: c) else { throw Malformed(description: "unclosed \(c)") }
                let content = String(chars[(i + 1)..<end])
                tokens.append(c == "?" ? .special(content.trimmingCharacters(in: .whitespaces)) : .terminal(content))
                i = end + 1
                continue
            }
            if c.isLetter || c == "_" {
                var j = i
                while j < chars.count, chars[j].isLetter || chars[j].isNumber || chars[j] == "_" { j += 1 }
                tokens.append(.name(String(chars[i..<j])))
                i = j
                continue
            }
            guard "=|;()[]{}-".contains(c) else { throw Malformed(description: "unexpected '\(c)' in the grammar") }
            tokens.append(.symbol(c))
            i += 1
        }
        return tokens
    }

    /// Recursive descent over a rule body: choice = sequence { "|" sequence }; sequence = { factor };
    /// factor = item [ "-" item ].
    struct BodyReader {
        let tokens: [Token]
        var position = 0

        var current: Token? { position < tokens.count ? tokens[position] : nil }

        mutating func choice() throws -> EBNFNode {
            var options = [try sequence()]
            while current == .symbol("|") { position += 1; options.append(try sequence()) }
            return options.count == 1 ? options[0] : .choice(options)
        }

        mutating func sequence() throws -> EBNFNode {
            var items: [EBNFNode] = []
            while let token = current, ![.symbol("|"), .symbol(";"), .symbol(")"), .symbol("]"), .symbol("}")].contains(token) {
                var item = try self.item()
                if current == .symbol("-") { position += 1; item = .except(item, try self.item()) }
                items.append(item)
            }
            guard !items.isEmpty else { throw Malformed(description: "empty alternative near token \(position)") }
            return items.count == 1 ? items[0] : .sequence(items)
        }

        mutating func item() throws -> EBNFNode {
            guard let token = current else { throw Malformed(description: "unexpected end of the grammar") }
            position += 1
            switch token {
            case .name(let n): return .nonterminal(n)
            case .terminal(let t): return .terminal(t)
            case .special(let s): return .special(s)
            case .symbol(let open):
                let close: Character
                switch open {
                case "(": close = ")"
                case "[": close = "]"
                case "{": close = "}"
                default: throw Malformed(description: "unexpected '\(open)'")
                }
                let inner = try choice()
                guard current == .symbol(close) else { throw Malformed(description: "expected '\(close)'") }
                position += 1
                return open == "(" ? inner : open == "[" ? .optional(inner) : .repetition(inner)
            }
        }
    }
}

// MARK: - Random sentences of the grammar

/// Expands the syntax rules at random; `identifier`, `number` and `string` come from the lexical rules.
/// Past a depth it takes the cheapest way out of every choice, so sentences stay finite.
struct SentenceGenerator {
    let grammar: EBNF
    var random: RandomSource
    private(set) var expandedRules: Set<String> = []
    private(set) var emittedTerminals: Set<String> = []
    /// Fewest tokens each rule can produce (a fixed point over the rules).
    private var cost: [String: Int] = [:]

    init(grammar: EBNF, random: RandomSource) {
        self.grammar = grammar
        self.random = random
        var cost: [String: Int] = [:]
        for _ in 0..<grammar.rules.count + 1 {
            for rule in grammar.rules.values { cost[rule.name] = Self.cost(rule.body, cost) }
        }
        self.cost = cost
    }

    static func cost(_ node: EBNFNode, _ known: [String: Int]) -> Int {
        switch node {
        case .terminal, .special: return 1
        case .nonterminal(let n): return known[n] ?? 1_000_000
        case .sequence(let items): return items.reduce(0) { $0 + cost($1, known) }
        case .choice(let items): return items.map { cost($0, known) }.min()!
        case .optional, .repetition: return 0
        case .except(let a, _): return cost(a, known)
        }
    }

    mutating func sentence(of start: String) -> String {
        var tokens: [String] = []
        expand(.nonterminal(start), depth: 0, inShape: false, into: &tokens)
        // Tokens apart by a space, a line break, or a comment that runs to the end of its line.
        var text = ""
        for token in tokens {
            switch random.nextIndex(below: 10) {
            case 0: text += "\n"
            case 1: text += "  # a comment: model { ~ \"\n"
            default: text += " "
            }
            text += token
        }
        return text
    }

    private mutating func expand(_ node: EBNFNode, depth: Int, inShape: Bool, into tokens: inout [String]) {
        let deep = depth > 12
        switch node {
        case .terminal(let t):
            emittedTerminals.insert(t)
            tokens.append(t)
        case .special(let s):
            tokens.append(s)
        case .nonterminal(let name):
            switch name {
            case "identifier": tokens.append(lexical("identifier"))
            case "string": tokens.append(lexical("string"))
            // A dimension must be a whole number from 1 to 16777216 (a rule the grammar states in words).
            case "number": tokens.append(inShape ? String(1 + random.nextIndex(below: 999)) : lexical("number"))
            default:
                expandedRules.insert(name)
                expand(grammar.rules[name]!.body, depth: depth + 1, inShape: inShape || name == "shape", into: &tokens)
            }
        case .sequence(let items):
            for item in items { expand(item, depth: depth, inShape: inShape, into: &tokens) }
        case .choice(let options):
            let pick: EBNFNode
            if deep {
                pick = options.min { Self.cost($0, cost) < Self.cost($1, cost) }!
            } else {
                pick = options[random.nextIndex(below: options.count)]
            }
            expand(pick, depth: depth, inShape: inShape, into: &tokens)
        case .optional(let inner):
            if !deep, random.nextIndex(below: 2) == 0 { expand(inner, depth: depth, inShape: inShape, into: &tokens) }
        case .repetition(let inner):
            let count = deep ? 0 : random.nextIndex(below: 4)
            for _ in 0..<count { expand(inner, depth: depth, inShape: inShape, into: &tokens) }
        case .except:
            preconditionFailure("the syntax section has no exceptions")
        }
    }

    /// One token spelled by the lexical rules (characters concatenated, no spaces).
    private mutating func lexical(_ rule: String) -> String {
        while true {
            var text = ""
            spell(grammar.rules[rule]!.body, into: &text)
            // `identifier = word - keyword`: draw again when the word is a keyword.
            if rule == "identifier", Keyword(rawValue: text) != nil { continue }
            return text
        }
    }

    private mutating func spell(_ node: EBNFNode, into text: inout String) {
        switch node {
        case .terminal(let t): text += t
        case .special:
            // Special sequences inside tokens describe "any character except …": a safe sample of them.
            let sample = Array("az Z09_./:-()#~")
            text.append(sample[random.nextIndex(below: sample.count)])
        case .nonterminal(let name): spell(grammar.rules[name]!.body, into: &text)
        case .sequence(let items): for item in items { spell(item, into: &text) }
        case .choice(let options): spell(options[random.nextIndex(below: options.count)], into: &text)
        case .optional(let inner): if random.nextIndex(below: 2) == 0 { spell(inner, into: &text) }
        // At most one extra repetition inside a token keeps exponents small (a number must be finite).
        case .repetition(let inner): if random.nextIndex(below: 2) == 0 { spell(inner, into: &text) }
        case .except(let a, _): spell(a, into: &text)
        }
    }
}
