/// One message about a model file, pointing at the spot it is about.
public struct Diagnostic: Error, CustomStringConvertible, Sendable {
    public enum Severity: String, Sendable { case error, warning, note }
    public let severity: Severity
    public let message: String
    public let range: SourceRange
    /// An extra line under the caret, e.g. "did you mean 'relu'?"
    public let hint: String?

    public init(_ message: String, at range: SourceRange, hint: String? = nil, severity: Severity = .error) {
        self.severity = severity; self.message = message; self.range = range; self.hint = hint
    }

    public var description: String { "\(severity.rawValue): \(message)" }

    /// `file:line:column: error: message`, the source line, and a caret (with tildes) under the range,
    /// in the style of swift-syntax's DiagnosticsFormatter.
    public func formatted(in source: SourceFile) -> String {
        let (line, column) = source.location(of: range.start)
        let (endLine, endColumn) = source.location(of: range.end)
        let text = source.lineText(line)
        let width = endLine == line ? max(1, endColumn - column) : max(1, text.count - column + 1)
        var out = "\(source.path):\(line):\(column): \(severity.rawValue): \(message)\n"
        out += "  \(text)\n"
        out += "  " + String(repeating: " ", count: max(0, column - 1)) + "^" + String(repeating: "~", count: width - 1)
        if let hint { out += "\n  \(hint)" }
        return out
    }
}

/// Thrown by the front end: every diagnostic found, errors and warnings, in source order.
public struct CompileFailure: Error, Sendable {
    public let diagnostics: [Diagnostic]
    public let source: SourceFile
    public func formatted() -> String { diagnostics.map { $0.formatted(in: source) }.joined(separator: "\n") }
}

/// Edit distance, for "did you mean …?" hints.
func closestName(to name: String, among candidates: [String]) -> String? {
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
    let target = Array(name)
    let scored = candidates.map { ($0, distance(target, Array($0))) }.filter { $0.1 <= max(1, name.count / 3) }
    return scored.min { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }?.0
}
