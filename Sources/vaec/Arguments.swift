/// A small command-line parser: positional words, `--flag`, `--option value` and `-o value`.
struct Arguments {
    var positional: [String] = []
    var options: [String: String] = [:]
    var flags: Set<String> = []

    /// `valued` lists the options that take a value; anything else starting with '-' is a flag.
    init(_ words: ArraySlice<String>, valued: Set<String>, flags known: Set<String>) throws {
        var i = words.startIndex
        while i < words.endIndex {
            let word = words[i]
            if word.hasPrefix("-") && word.count > 1 && Double(word) == nil {
                var name = word, inline: String?
                if let eq = word.firstIndex(of: "=") { name = String(word[..<eq]); inline = String(word[word.index(after: eq)...]) }
                if valued.contains(name) {
                    if let inline { options[name] = inline } else {
                        guard i + 1 < words.endIndex else { throw UsageError("\(name) needs a value") }
                        options[name] = words[i + 1]
                        i += 1
                    }
                } else if known.contains(name) {
                    flags.insert(name)
                } else {
                    throw UsageError("unknown option '\(name)'")
                }
            } else {
                positional.append(word)
            }
            i += 1
        }
    }

    func integer(_ name: String, in range: ClosedRange<Int>) throws -> Int? {
        guard let text = options[name] else { return nil }
        guard let v = Int(text), range.contains(v) else {
            throw UsageError("\(name) takes a whole number from \(range.lowerBound) to \(range.upperBound), not '\(text)'")
        }
        return v
    }
}

struct UsageError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
