/// Seeded mutations of files for fuzzing: byte-level (bit flips, interesting bytes, inserted, deleted
/// and repeated ranges, truncation, splicing with another file) and token-level for model text
/// (dictionary words, swapped, deleted or repeated tokens, numbers replaced by extreme ones). The same
/// seed gives the same sequence of inputs, so any finding is reproducible from its seed.
public struct Mutator {
    public var random: RandomSource
    /// Largest input produced (bigger inputs only slow the run without finding more).
    public var maximumSize = 1 << 16

    public init(seed: UInt64) { random = RandomSource(seed: seed) }

    /// Words of the model language and of the file formats' headers, and values at the edges of what
    /// the readers accept.
    static let dictionary: [String] = [
        "model", "input", "latent", "encoder", "decoder", "objective", "train", "q(z | x)", "p(x | z)",
        "linear(", "relu(", "exp(", "log(", "sqrt(", "normal(", "bernoulli(", "logits:", "mean:", "logvar:", "sigma:",
        "beta:", "batch:", "epochs:", "seed:", "data:", "optimizer:", "adam(lr: ", "idx(\"", "npy(\"", "csv(\"", "scale:",
        "(", ")", "[", "]", "{", "}", ",", ":", "~", "|", "=", "+", "-", "*", "/", "#", "\"", "\n", " ",
        "0", "-1", "1e39", "1e-45", "16777216", "16777217", "4294967296", "9223372036854775807", "1e308", ".5", "1/0",
        "[16777216, 16777216]", "((((((((((((((((", "----------------",
        "{\"", "\":", "null", "true", "[]", "{}", "\"dtype\":\"F32\"", "\"shape\":", "\"data_offsets\":", "\"__metadata__\"",
        "'descr': '<f4'", "'fortran_order': True", "'shape': (", "\u{93}NUMPY", "VAEK 1\n", "crc32 ", " length ",
        "nan", "inf", "-inf", "NaN",
    ]

    static let interestingBytes: [UInt8] = [0, 1, 0x7F, 0x80, 0xFF, 0x20, 0x0A, 0x22, 0x28, 0x29, 0x2C, 0x3A, 0x5B, 0x5D, 0x7B, 0x7D, 0x2D, 0x39]

    /// One to four stacked mutations of `input`; `corpus` provides splicing partners.
    public mutating func mutate(_ input: [UInt8], corpus: [[UInt8]]) -> [UInt8] {
        var bytes = input
        for _ in 0...random.nextIndex(below: 4) { bytes = mutateOnce(bytes, corpus: corpus) }
        if bytes.count > maximumSize { bytes.removeLast(bytes.count - maximumSize) }
        return bytes
    }

    mutating func mutateOnce(_ input: [UInt8], corpus: [[UInt8]]) -> [UInt8] {
        var bytes = input
        let n = bytes.count
        switch random.nextIndex(below: 12) {
        case 0 where n > 0:                                   // flip a bit
            bytes[random.nextIndex(below: n)] ^= 1 << UInt8(random.nextIndex(below: 8))
        case 1 where n > 0:                                   // an interesting byte
            bytes[random.nextIndex(below: n)] = Self.interestingBytes[random.nextIndex(below: Self.interestingBytes.count)]
        case 2:                                               // insert random bytes
            let count = 1 + random.nextIndex(below: 8)
            bytes.insert(contentsOf: (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }, at: random.nextIndex(below: n + 1))
        case 3 where n > 0:                                   // delete a range
            let start = random.nextIndex(below: n)
            bytes.removeSubrange(start..<min(n, start + 1 + random.nextIndex(below: 32)))
        case 4 where n > 0:                                   // repeat a range (deep nesting, long chains)
            let start = random.nextIndex(below: n)
            let chunk = Array(bytes[start..<min(n, start + 1 + random.nextIndex(below: 16))])
            let times = 1 + random.nextIndex(below: random.nextIndex(below: 2) == 0 ? 8 : 512)
            bytes.insert(contentsOf: Array(repeatElement(chunk, count: times).joined()), at: start)
        case 5 where n > 0:                                   // truncate
            bytes.removeLast(1 + random.nextIndex(below: n))
        case 6 where !corpus.isEmpty:                         // splice with another file
            let other = corpus[random.nextIndex(below: corpus.count)]
            let cut = random.nextIndex(below: n + 1), from = random.nextIndex(below: other.count + 1)
            bytes = Array(bytes[..<cut]) + other[from...]
        case 7:                                               // a dictionary word
            let word = Array(Self.dictionary[random.nextIndex(below: Self.dictionary.count)].utf8)
            bytes.insert(contentsOf: word, at: random.nextIndex(below: n + 1))
        case 8:                                               // a number replaced by an extreme one
            let numbers = Self.ranges(in: bytes) { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
            guard let range = numbers.randomElement(using: &random) else { return mutateOnce(bytes, corpus: []) }
            let replacement = ["0", "-1", "16777216", "4294967295", "9223372036854775807", "99999999999999999999", "1e308", "3.5"]
            bytes.replaceSubrange(range, with: Array(replacement[random.nextIndex(below: replacement.count)].utf8))
        case 9, 10:                                           // token-level: swap, delete or repeat a token
            var tokens = Self.tokens(bytes)
            guard tokens.count > 1 else { return mutateOnce(bytes, corpus: []) }
            let i = random.nextIndex(below: tokens.count), j = random.nextIndex(below: tokens.count)
            switch random.nextIndex(below: 3) {
            case 0: tokens.swapAt(i, j)
            case 1: tokens.remove(at: i)
            default: tokens.insert(tokens[i], at: j)
            }
            bytes = Array(tokens.joined())
        default:                                              // overwrite a 4- or 8-byte field (lengths, dims)
            guard n >= 8 else { return mutateOnce(bytes, corpus: []) }
            let at = random.nextIndex(below: n - 7)
            let width = random.nextIndex(below: 2) == 0 ? 4 : 8
            let value: UInt64 = [0, 1, 0xFF, 0x7FFF_FFFF, 0xFFFF_FFFF, 0x7FFF_FFFF_FFFF_FFFF, .max, random.next()][random.nextIndex(below: 8)]
            for k in 0..<width { bytes[at + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(k))) }
        }
        return bytes
    }

    /// Maximal runs of bytes matching `predicate`.
    static func ranges(in bytes: [UInt8], where predicate: (UInt8) -> Bool) -> [Range<Int>] {
        var result: [Range<Int>] = []
        var start: Int?
        for (i, b) in bytes.enumerated() {
            if predicate(b) { if start == nil { start = i } } else if let s = start { result.append(s..<i); start = nil }
        }
        if let s = start { result.append(s..<bytes.count) }
        return result
    }

    /// Splits text into words, numbers, single punctuation bytes and runs of white space, so that
    /// joining the tokens gives the input back.
    static func tokens(_ bytes: [UInt8]) -> [[UInt8]] {
        func kind(_ b: UInt8) -> Int {
            if (b >= 0x30 && b <= 0x39) || (b | 0x20 >= 0x61 && b | 0x20 <= 0x7A) || b == 0x5F || b == 0x2E { return 0 }
            if b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D { return 1 }
            return 2
        }
        var tokens: [[UInt8]] = []
        for b in bytes {
            if let last = tokens.last?.last, kind(last) == kind(b), kind(b) != 2 { tokens[tokens.count - 1].append(b) } else { tokens.append([b]) }
        }
        return tokens
    }
}

extension Array {
    fileprivate func randomElement(using random: inout RandomSource) -> Element? {
        isEmpty ? nil : self[random.nextIndex(below: count)]
    }
}
