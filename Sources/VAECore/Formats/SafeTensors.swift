import Foundation

/// The safetensors format (as PyTorch / Hugging Face use it):
///
///     [8 bytes]  N, little-endian UInt64
///     [N bytes]  UTF-8 JSON: {"__metadata__": {"k": "v"}, "name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
///     [rest]     the data buffer; offsets are relative to its start; values little-endian
///
/// vaec reads and writes `F32` tensors only. The reader validates the whole file against the spec
/// (header length, JSON shape, dtype, shape × 4 == byte length, offsets in bounds, tensors tiling the
/// buffer exactly with no gaps or overlaps, finite values) and reports problems as `FormatError`.
public struct SafeTensors {
    public struct Tensor: Equatable {
        public var shape: [Int]
        public var values: [Float]

        public init(shape: [Int], values: [Float]) {
            self.shape = shape
            self.values = values
        }
    }

    public var tensors: [String: Tensor]
    public var metadata: [String: String]

    public init(tensors: [String: Tensor] = [:], metadata: [String: String] = [:]) {
        self.tensors = tensors
        self.metadata = metadata
    }

    /// Largest JSON header the reader accepts.
    public static let maxHeaderBytes = 100_000_000

    static let metadataKey = "__metadata__"

    // MARK: Writing

    /// The file's bytes. Deterministic: `__metadata__` first (omitted when empty) with its keys
    /// sorted, then tensors sorted by name, data laid out in that same order; the header is padded
    /// with spaces to a multiple of 8 bytes. Call `validate(path:)` first if the contents might be
    /// inconsistent (`write(to:)` does); offsets always follow `values.count`.
    public func encoded() -> [UInt8] {
        let names = tensors.keys.sorted()
        var json = "{"
        var first = true
        if !metadata.isEmpty {
            json += SafeTensors.jsonString(SafeTensors.metadataKey) + ":{"
            var firstMeta = true
            for key in metadata.keys.sorted() {
                if !firstMeta { json += "," }
                firstMeta = false
                json += SafeTensors.jsonString(key) + ":" + SafeTensors.jsonString(metadata[key] ?? "")
            }
            json += "}"
            first = false
        }
        var offset = 0
        for name in names {
            guard let t = tensors[name] else { continue }
            let size = t.values.count * 4
            if !first { json += "," }
            first = false
            json += SafeTensors.jsonString(name)
            json += ":{\"dtype\":\"F32\",\"shape\":["
            json += t.shape.map(String.init).joined(separator: ",")
            json += "],\"data_offsets\":[\(offset),\(offset + size)]}"
            offset += size
        }
        json += "}"
        var header = Array(json.utf8)
        while header.count % 8 != 0 { header.append(0x20) }

        var out: [UInt8] = []
        out.reserveCapacity(8 + header.count + offset)
        let n = UInt64(header.count)
        for k in 0..<8 { out.append(UInt8(truncatingIfNeeded: n >> (8 * UInt64(k)))) }
        out.append(contentsOf: header)
        for name in names {
            guard let t = tensors[name] else { continue }
            let start = out.count
            out.append(contentsOf: repeatElement(0, count: t.values.count * 4))
            out.withUnsafeMutableBytes { raw in
                for (i, v) in t.values.enumerated() {
                    raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: start + 4 * i, as: UInt32.self)
                }
            }
        }
        return out
    }

    /// Checks that every tensor is writable and will read back: a usable name, a shape whose
    /// product equals the value count, finite values.
    public func validate(path: String = "<memory>") throws {
        func fail(_ problem: String) -> FormatError { FormatError(path: path, problem: problem) }
        for name in tensors.keys.sorted() {
            guard let t = tensors[name] else { continue }
            if name == SafeTensors.metadataKey {
                throw fail("cannot be written: a tensor may not be named '\(SafeTensors.metadataKey)'")
            }
            if name.isEmpty {
                throw fail("cannot be written: a tensor has an empty name")
            }
            if let bad = t.shape.first(where: { $0 < 0 }) {
                throw fail("cannot be written: tensor '\(name)' has a negative dimension \(bad) in shape \(t.shape)")
            }
            guard let count = FormatMath.product(t.shape), count == t.values.count else {
                throw fail("cannot be written: tensor '\(name)' has shape \(t.shape) but \(t.values.count) values")
            }
            if let i = t.values.firstIndex(where: { !$0.isFinite }) {
                throw fail("cannot be written: tensor '\(name)' contains \(t.values[i].isNaN ? "NaN" : "Inf") at element \(i) (index \(FormatText.coordinates(of: i, in: t.shape)))")
            }
        }
    }

    /// Validates, encodes and writes atomically (temp file `"\(path).tmp-<pid>"`, fsync, rename).
    public func write(to path: String) throws {
        try validate(path: path)
        try AtomicFile.write(encoded(), to: path)
    }

    /// JSON string literal with the mandatory escapes; other characters are written as raw UTF-8.
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 || u.value == 0x7F {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    // MARK: Reading

    public static func read(path: String) throws -> SafeTensors {
        let bytes = try FormatFiles.readAll(path)
        return try parse(bytes, path: path)
    }

    public static func parse(_ bytes: [UInt8], path: String) throws -> SafeTensors {
        func fail(_ problem: String) -> FormatError { FormatError(path: path, problem: problem) }

        if bytes.isEmpty {
            throw fail("is empty: a safetensors file starts with an 8-byte header length")
        }
        if bytes.count < 8 {
            throw fail("is too short for a safetensors file: \(FormatText.bytes(bytes.count)), but the header length alone needs 8")
        }
        var n64: UInt64 = 0
        for k in 0..<8 { n64 |= UInt64(bytes[k]) << (8 * UInt64(k)) }
        let available = bytes.count - 8
        if n64 > UInt64(maxHeaderBytes) {
            throw fail("has an absurd header length \(n64) (more than the \(maxHeaderBytes)-byte limit); this is probably not a safetensors file")
        }
        let n = Int(n64)
        if n > available {
            throw fail("is truncated in its header: the header length says \(FormatText.bytes(n)) of JSON but only \(FormatText.bytes(available)) follow")
        }
        if n < 2 {
            throw fail("has a header length of \(n), too small for the JSON header (at least \"{}\")")
        }
        let headerBytes = Array(bytes[8..<(8 + n)])
        guard String(validatingUTF8Bytes: headerBytes) != nil else {
            throw fail("has a header that is not valid UTF-8")
        }
        if headerBytes[0] != UInt8(ascii: "{") {
            throw fail("has a bad JSON header: it must start with '{' (found \(FormatText.hex(headerBytes[0..<min(4, headerBytes.count)])))")
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(headerBytes), options: [])
        } catch {
            let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
            throw fail("has a bad JSON header: \(detail)")
        }
        guard let top = object as? [String: Any] else {
            throw fail("has a bad JSON header: the top level must be an object")
        }
        if let dup = duplicateTopLevelKey(headerBytes, parsedCount: top.count) {
            throw fail("has a bad JSON header: the key '\(dup)' appears more than once")
        }

        var metadata: [String: String] = [:]
        if let meta = top[metadataKey] {
            guard let dict = meta as? [String: Any] else {
                throw fail("has a bad JSON header: '\(metadataKey)' must be an object of strings")
            }
            for (k, v) in dict {
                guard let s = v as? String else {
                    throw fail("has a bad JSON header: metadata entry '\(k)' must be a string")
                }
                metadata[k] = s
            }
        }

        struct Entry {
            let name: String
            let shape: [Int]
            let begin: Int
            let end: Int
        }
        var entries: [Entry] = []
        for name in top.keys.sorted() where name != metadataKey {
            guard let info = top[name] as? [String: Any] else {
                throw fail("has a bad JSON header: the entry for tensor '\(name)' must be an object with dtype, shape and data_offsets")
            }
            guard let dtypeAny = info["dtype"] else {
                throw fail("has a bad JSON header: tensor '\(name)' has no dtype")
            }
            guard let dtype = dtypeAny as? String else {
                throw fail("has a bad JSON header: tensor '\(name)' has a dtype that is not a string")
            }
            if dtype != "F32" {
                throw fail("tensor '\(name)' has dtype \(dtype); vaec reads F32 only")
            }
            guard let shapeAny = info["shape"] else {
                throw fail("has a bad JSON header: tensor '\(name)' has no shape")
            }
            guard let shapeList = shapeAny as? [Any] else {
                throw fail("has a bad JSON header: the shape of tensor '\(name)' must be an array of non-negative integers")
            }
            var shape: [Int] = []
            for d in shapeList {
                guard let v = nonNegativeInt(d) else {
                    throw fail("has a bad JSON header: the shape of tensor '\(name)' contains \(describe(d)), which is not a non-negative integer")
                }
                shape.append(v)
            }
            guard let offsetsAny = info["data_offsets"] else {
                throw fail("has a bad JSON header: tensor '\(name)' has no data_offsets")
            }
            guard let offsets = offsetsAny as? [Any], offsets.count == 2 else {
                throw fail("has a bad JSON header: data_offsets of tensor '\(name)' must be an array [begin, end]")
            }
            guard let begin = nonNegativeInt(offsets[0]), let end = nonNegativeInt(offsets[1]) else {
                throw fail("has a bad JSON header: data_offsets of tensor '\(name)' must be non-negative integers, found [\(describe(offsets[0])), \(describe(offsets[1]))]")
            }
            if begin > end {
                throw fail("has bad data_offsets for tensor '\(name)': begin \(begin) is after end \(end)")
            }
            guard let count = FormatMath.product(shape), count <= FormatLimits.maxElements else {
                throw fail("has an absurd shape \(shape) for tensor '\(name)': more than 2^31 elements")
            }
            if count * 4 != end - begin {
                throw fail("has a size mismatch for tensor '\(name)': shape \(shape) needs \(FormatText.bytes(count * 4)) of F32 data but data_offsets [\(begin), \(end)] span \(FormatText.bytes(end - begin))")
            }
            entries.append(Entry(name: name, shape: shape, begin: begin, end: end))
        }

        let bufferStart = 8 + n
        let bufferSize = bytes.count - bufferStart
        for e in entries where e.end > bufferSize {
            throw fail("is truncated: tensor '\(e.name)' has data_offsets [\(e.begin), \(e.end)] but the data buffer holds only \(FormatText.bytes(bufferSize))")
        }
        let ordered = entries.sorted { ($0.begin, $0.end, $0.name) < ($1.begin, $1.end, $1.name) }
        var cursor = 0
        var previous: Entry? = nil
        for e in ordered {
            if e.begin < cursor, let p = previous {
                throw fail("has overlapping tensors: '\(p.name)' occupies bytes [\(p.begin), \(p.end)) and '\(e.name)' occupies [\(e.begin), \(e.end)) of the data buffer")
            }
            if e.begin > cursor {
                throw fail("has a gap in its data buffer: bytes [\(cursor), \(e.begin)) belong to no tensor (the spec requires tensors to cover the buffer exactly)")
            }
            cursor = e.end
            previous = e
        }
        if cursor < bufferSize {
            throw fail("has \(FormatText.bytes(bufferSize - cursor)) of trailing data after the last tensor: the data buffer holds \(FormatText.bytes(bufferSize)) but tensors cover only \(FormatText.bytes(cursor))")
        }

        var tensors: [String: Tensor] = [:]
        for e in entries {
            let count = (e.end - e.begin) / 4
            var values = [Float](repeating: 0, count: count)
            var bad: Int? = nil
            bytes.withUnsafeBytes { raw in
                values.withUnsafeMutableBufferPointer { out in
                    let base = bufferStart + e.begin
                    for i in 0..<count {
                        let u = raw.loadUnaligned(fromByteOffset: base + 4 * i, as: UInt32.self)
                        let f = Float(bitPattern: UInt32(littleEndian: u))
                        if !f.isFinite { bad = i; return }
                        out[i] = f
                    }
                }
            }
            if let i = bad {
                let base = bufferStart + e.begin + 4 * i
                var u: UInt32 = 0
                for k in 0..<4 { u |= UInt32(bytes[base + k]) << (8 * UInt32(k)) }
                let what = Float(bitPattern: u).isNaN ? "NaN" : "Inf"
                throw fail("tensor '\(e.name)' contains \(what) at element \(i) (index \(FormatText.coordinates(of: i, in: e.shape))); values must be finite")
            }
            tensors[e.name] = Tensor(shape: e.shape, values: values)
        }
        return SafeTensors(tensors: tensors, metadata: metadata)
    }

    /// A JSON number that is a non-negative integer (not a boolean, not fractional, fits in Int).
    static func nonNegativeInt(_ any: Any) -> Int? {
        guard let n = any as? NSNumber else { return nil }
        if isBoolean(n) { return nil }
        guard let v = Int(exactly: n), v >= 0 else { return nil }
        return v
    }

    static func isBoolean(_ n: NSNumber) -> Bool {
        let typeName = String(describing: type(of: n))
        // JSONSerialization returns true/false as a boolean NSNumber (objCType "c"); integers come as "i"/"q"/"Q".
        return typeName.contains("Boolean") || String(cString: n.objCType) == "c"
    }

    static func describe(_ any: Any) -> String {
        if let s = any as? String { return "\"\(s)\"" }
        if let n = any as? NSNumber { return isBoolean(n) ? (n.boolValue ? "true" : "false") : n.stringValue }
        if any is NSNull { return "null" }
        if any is [Any] { return "an array" }
        if any is [String: Any] { return "an object" }
        return "\(any)"
    }

    /// JSONSerialization silently keeps the last of duplicated keys; the spec forbids duplicates.
    /// Counts the top-level keys in the raw text and, when that exceeds the parsed count, names a
    /// duplicate (keys compared by their raw, still-escaped bytes, which suffices to name one).
    static func duplicateTopLevelKey(_ json: [UInt8], parsedCount: Int) -> String? {
        var depth = 0
        var inString = false
        var escaped = false
        var expectingKey = false
        var keyStart = -1
        var keys: [ArraySlice<UInt8>] = []
        var i = 0
        while i < json.count {
            let c = json[i]
            if inString {
                if escaped {
                    escaped = false
                } else if c == UInt8(ascii: "\\") {
                    escaped = true
                } else if c == UInt8(ascii: "\"") {
                    inString = false
                    if keyStart >= 0 {
                        keys.append(json[keyStart..<i])
                        keyStart = -1
                    }
                }
            } else {
                switch c {
                case UInt8(ascii: "\""):
                    inString = true
                    if depth == 1 && expectingKey { keyStart = i + 1 }
                    expectingKey = false
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                    expectingKey = depth == 1 && c == UInt8(ascii: "{")
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                case UInt8(ascii: ","):
                    if depth == 1 { expectingKey = true }
                default:
                    break
                }
            }
            i += 1
        }
        guard keys.count > parsedCount else { return nil }
        var seen = Set<ArraySlice<UInt8>>()
        for k in keys {
            if !seen.insert(k).inserted { return String(decoding: k, as: UTF8.self) }
        }
        return String(decoding: keys.last ?? [], as: UTF8.self)
    }
}

extension String {
    /// `String(validating:as:)` is not available on every toolchain we build with; this checks UTF-8
    /// validity via Foundation without replacing bad sequences.
    fileprivate init?(validatingUTF8Bytes bytes: [UInt8]) {
        guard let s = String(bytes: bytes, encoding: .utf8) else { return nil }
        self = s
    }
}
