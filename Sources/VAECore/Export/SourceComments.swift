import Foundation

/// The `#` comments of a `.vae` file, by line. The parser drops comments, so the exporters re-scan
/// the source text to carry them into the generated code: a comment is attached to the first generated
/// element ("anchor") at or after its line, trailing when it shares the element's line, on its own
/// line before the element otherwise. Every comment is placed exactly once.
struct SourceComments {
    struct Comment {
        let line: Int
        /// The text after `#`, without surrounding white space.
        let text: String
        /// True when nothing but white space precedes the `#` on its line.
        let standalone: Bool
    }

    private(set) var comments: [Comment] = []
    /// Index of the first comment not yet placed (comments are placed in line order).
    private var next = 0

    init(_ source: SourceFile) {
        for (index, line) in source.text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if let (offset, text) = Self.comment(in: line) {
                let before = line[..<offset]
                comments.append(Comment(line: index + 1, text: text,
                                        standalone: before.allSatisfy { $0 == " " || $0 == "\t" || $0 == "\r" }))
            }
        }
    }

    /// Where a comment starts on a line: the first `#` outside a string literal (strings are `"…"` on one
    /// line, with `\"` and `\\` escapes, as the lexer reads them).
    static func comment(in line: Substring) -> (String.Index, String)? {
        var inString = false, escaped = false
        var i = line.startIndex
        while i < line.endIndex {
            let c = line[i]
            if inString {
                if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
            } else if c == "\"" {
                inString = true
            } else if c == "#" {
                let text = line[line.index(after: i)...].trimmingCharacters(in: .whitespacesAndNewlines)
                return (i, text)
            }
            i = line.index(after: i)
        }
        return nil
    }

    /// Takes the comments an element on `line` carries: the unplaced standalone comments on earlier lines
    /// (and comments on lines inside a multi-line element, up to `lastLine`), then the one on its own line.
    mutating func take(line: Int, through lastLine: Int? = nil) -> (before: [String], trailing: String?) {
        var before: [String] = [], trailing: String?
        let end = max(line, lastLine ?? line)
        while next < comments.count, comments[next].line <= end {
            let c = comments[next]
            if c.line == line && !c.standalone { trailing = c.text } else { before.append(c.text) }
            next += 1
        }
        return (before, trailing)
    }

    /// Comments not yet placed (those after the last element).
    mutating func takeRest() -> [String] {
        defer { next = comments.count }
        return comments[next...].map(\.text)
    }
}
