import Foundation

/// Writes Python source: indentation, comments carried over from the model file (before a line or
/// trailing it, aligned), and literals that read back as exactly the numbers vaec uses.
final class PythonWriter {
    private(set) var lines: [String] = []
    private var depth = 0
    /// Trailing comments start at this column when the code is shorter.
    static let commentColumn = 56

    var text: String { lines.joined(separator: "\n") + "\n" }

    func line(_ code: String, comment: String? = nil) {
        let indented = String(repeating: "    ", count: depth) + code
        guard let comment, !comment.isEmpty else { lines.append(indented); return }
        let padding = max(2, Self.commentColumn - indented.count)
        lines.append(indented + String(repeating: " ", count: padding) + "# " + comment)
    }

    /// A line of code with the model file's comments for it: standalone ones above, the line's own after.
    func line(_ code: String, carrying comments: (before: [String], trailing: String?)) {
        for c in comments.before { comment(c) }
        line(code, comment: comments.trailing)
    }

    func comment(_ text: String) {
        line(text.isEmpty ? "#" : "# " + text)
    }

    /// Ensures `count` blank lines before the next line (none at the very top).
    func blank(_ count: Int = 1) {
        guard !lines.isEmpty else { return }
        let trailing = lines.reversed().prefix { $0.isEmpty }.count
        for _ in trailing..<max(trailing, count) { lines.append("") }
    }

    func indented(_ body: () throws -> Void) rethrows {
        depth += 1
        defer { depth -= 1 }
        try body()
    }

    /// A block of text (a fixed runtime piece) at the current indentation.
    func verbatim(_ block: String) {
        for l in block.split(separator: "\n", omittingEmptySubsequences: false) {
            if l.isEmpty { lines.append("") } else { line(String(l)) }
        }
        while lines.last == "" { lines.removeLast() }
    }

    /// A docstring at the current indentation.
    func docstring(_ text: String) {
        let body = text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"\"\"", with: "\\\"\\\"\\\"")
        let parts = body.split(separator: "\n", omittingEmptySubsequences: false)
        if parts.count == 1 { line("\"\"\"\(body)\"\"\""); return }
        line("\"\"\"" + parts[0])
        for p in parts.dropFirst() { if p.isEmpty { lines.append("") } else { line(String(p)) } }
        line("\"\"\"")
    }
}

enum Python {
    static let keywords: Set<String> = [
        "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def",
        "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is",
        "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
        "match", "case", "_",
    ]

    static func isIdentifier(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, first == "_" || (first.isASCII && first.properties.isAlphabetic) else { return false }
        return s.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) }
    }

    /// A Python name for a `.vae` name: itself unless it is a keyword or taken (then with `_` appended).
    static func name(_ vaeName: String, avoiding taken: Set<String>) -> String {
        var n = vaeName
        while keywords.contains(n) || taken.contains(n) { n += "_" }
        return n
    }

    /// A double-quoted string literal.
    static func string(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 || u.value == 0x7F { out += String(format: "\\x%02x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }

    /// A number as written in the model file (vaec rounds it to Float where a tensor uses it, and so
    /// does PyTorch or JAX when a Python float meets a float32 array).
    static func number(_ v: Double) -> String {
        if v == v.rounded(), Swift.abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }

    /// A Float that vaec computed (a constant folded in single precision): written as the exact Double
    /// of that Float, so Python's double rounds back to the very same float32.
    static func float32(_ v: Float) -> String {
        let d = Double(v)
        if d == d.rounded(), Swift.abs(d) < 1e15 { return String(Int64(d)) + ".0" }
        return "\(d)"
    }

    static func bool(_ b: Bool) -> String { b ? "True" : "False" }

    static func tuple(_ dims: [Int]) -> String {
        dims.count == 1 ? "(\(dims[0]),)" : "(" + dims.map(String.init).joined(separator: ", ") + ")"
    }
}
