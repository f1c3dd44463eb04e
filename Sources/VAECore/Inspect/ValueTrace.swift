import Foundation

/// `vaec grad --values`: every evaluated IR line with the statistics of its value, and the first line
/// whose value holds a NaN or an Inf marked, with the source line it came from. Values are listed in
/// schedule order, which is the order they were computed in, so the first non-finite line is where the
/// trouble starts (jax#7205 found 0·inf in a sigmoid gradient this way).
public struct ValueTrace {
    public struct Entry {
        public var id: ValueID
        public var node: Node
        public var statistics: ValueStatistics
    }

    public var entries: [Entry]
    public let source: SourceFile

    public static let marker = "<<< first non-finite value"

    /// The index in `entries` of the first value holding a NaN or an Inf.
    public var firstNonFinite: Int? { entries.firstIndex { !$0.statistics.isFinite } }

    public func render() -> String {
        let lines = entries.map { IRPrinter.line($0.id, $0.node) }
        let width = min(lines.map(\.count).max() ?? 0, 72)
        let first = firstNonFinite
        var out: [String] = []
        for (index, (entry, line)) in zip(entries, lines).enumerated() {
            var text = line.padding(toLength: max(line.count, width), withPad: " ", startingAt: 0)
                + "  | " + entry.statistics.summary
            if index == first { text += "  " + Self.marker }
            out.append(text)
        }
        out.append(verdict)
        return out.joined(separator: "\n") + "\n"
    }

    /// One sentence: all finite, or which op produced the first NaN/Inf and from which source line.
    public var verdict: String {
        guard let index = firstNonFinite else { return "all \(entries.count) values are finite" }
        let entry = entries[index]
        let s = entry.statistics
        let what = [s.nanCount > 0 ? "\(s.nanCount) NaN" : nil, s.infCount > 0 ? "\(s.infCount) Inf" : nil]
            .compactMap { $0 }.joined(separator: " and ")
        var sentence = "first non-finite value: %\(entry.id) = \(entry.node.op.mnemonic)"
        if let name = entry.node.name { sentence += " (\(name))" }
        sentence += " holds \(what) of \(s.count) values"
        if entry.node.line > 0 {
            let text = source.lineText(entry.node.line).trimmingCharacters(in: .whitespaces)
            sentence += "; it comes from \(source.path):\(entry.node.line): \(text)"
        }
        return sentence
    }
}
