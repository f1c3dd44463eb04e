import Foundation

/// NumPy's `.npy` format: magic `\x93NUMPY`, major/minor version bytes, a little-endian header length
/// (UInt16 for version 1.0, UInt32 for 2.0 and 3.0), a Python-literal header dict such as
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 784), }`, then the raw array data.
///
/// vaec reads C-order arrays of `<f4`, `<f8`, `|u1` or `<u1` and converts them to `Float`.
public struct NPYFile {
    public let dims: [Int]
    public let values: [Float]

    public init(dims: [Int], values: [Float]) {
        self.dims = dims
        self.values = values
    }

    /// Largest header (the Python dict) the reader accepts. NumPy itself refuses more than 10 000 bytes by default.
    public static let maxHeaderBytes = 1 << 20
    /// NumPy's own limit on the number of dimensions.
    public static let maxDims = 64

    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

    enum DType {
        case f4, f8, u1

        var size: Int {
            switch self {
            case .u1: return 1
            case .f4: return 4
            case .f8: return 8
            }
        }
    }

    public static func read(path: String) throws -> NPYFile {
        let bytes = try FormatFiles.readAll(path)
        return try parse(bytes, path: path)
    }

    public static func parse(_ bytes: [UInt8], path: String) throws -> NPYFile {
        func fail(_ problem: String) -> FormatError { FormatError(path: path, problem: problem) }

        if bytes.isEmpty {
            throw fail("is empty: a .npy file starts with the magic string \\x93NUMPY")
        }
        if bytes.count >= 4 && bytes[0] == 0x50 && bytes[1] == 0x4B && bytes[2] == 0x03 && bytes[3] == 0x04 {
            throw fail("is a zip archive (probably a .npz), not a .npy file; extract the array first")
        }
        let prefix = min(bytes.count, magic.count)
        if Array(bytes[0..<prefix]) != Array(magic[0..<prefix]) {
            throw fail("has a bad magic string (\(FormatText.hex(bytes[0..<min(bytes.count, 8)]))): a .npy file starts with \\x93NUMPY")
        }
        if bytes.count < 10 {
            throw fail("is truncated in its header: \(FormatText.bytes(bytes.count)), but the magic, version and header length need at least 10")
        }
        let major = bytes[6]
        let minor = bytes[7]
        let lengthSize: Int
        switch major {
        case 1: lengthSize = 2
        case 2, 3: lengthSize = 4
        default:
            throw fail("has unsupported .npy format version \(major).\(minor); vaec reads versions 1.0, 2.0 and 3.0")
        }
        if minor != 0 {
            throw fail("has unsupported .npy format version \(major).\(minor); vaec reads versions 1.0, 2.0 and 3.0")
        }
        let prelude = 8 + lengthSize
        if bytes.count < prelude {
            throw fail("is truncated in its header: version \(major).0 needs \(prelude) bytes before the header dict but the file has \(FormatText.bytes(bytes.count))")
        }
        var headerLength = 0
        for k in 0..<lengthSize { headerLength |= Int(bytes[8 + k]) << (8 * k) }
        if headerLength > maxHeaderBytes {
            throw fail("has an absurd header length \(headerLength) (more than \(maxHeaderBytes) bytes); this is probably not a .npy file")
        }
        if bytes.count - prelude < headerLength {
            throw fail("is truncated in its header: the header length says \(FormatText.bytes(headerLength)) but only \(FormatText.bytes(bytes.count - prelude)) follow")
        }
        let headerBytes = Array(bytes[prelude..<(prelude + headerLength)])
        let headerText: String
        if major == 3 {
            guard let s = String(bytes: headerBytes, encoding: .utf8) else {
                throw fail("has a header that is not valid UTF-8")
            }
            headerText = s
        } else {
            // Versions 1.0 and 2.0 use latin-1; every byte maps to the scalar of the same value.
            headerText = String(String.UnicodeScalarView(headerBytes.map { Unicode.Scalar($0) }))
        }

        var parser = NPYHeaderParser(text: headerText)
        let header: NPYHeaderValue
        do {
            header = try parser.parseDocument()
        } catch let e as NPYHeaderParser.Failure {
            throw fail("has a malformed header dict: \(e.message)")
        }
        guard case .dict(let entries) = header else {
            throw fail("has a malformed header: expected a dict like {'descr': '<f4', 'fortran_order': False, 'shape': (…)}")
        }
        func entry(_ key: String) -> NPYHeaderValue? { entries.last(where: { $0.0 == key })?.1 }

        guard let descrValue = entry("descr") else {
            throw fail("has a header without 'descr' (the dtype)")
        }
        let dtype: DType
        switch descrValue {
        case .string(let d):
            switch d {
            case "<f4": dtype = .f4
            case "<f8": dtype = .f8
            case "|u1", "<u1": dtype = .u1
            default:
                throw fail("has dtype '\(d)'; vaec reads <f4, <f8, |u1 and <u1 only")
            }
        case .list, .tuple:
            throw fail("has a structured dtype (\(descrValue.pythonText)); vaec reads plain <f4, <f8, |u1 and <u1 arrays only")
        default:
            throw fail("has a malformed header: 'descr' must be a dtype string, found \(descrValue.pythonText)")
        }

        guard let fortranValue = entry("fortran_order") else {
            throw fail("has a header without 'fortran_order'")
        }
        guard case .bool(let fortran) = fortranValue else {
            throw fail("has a malformed header: 'fortran_order' must be True or False, found \(fortranValue.pythonText)")
        }
        if fortran {
            throw fail("is stored in Fortran (column-major) order (fortran_order: True); vaec reads C-order arrays only — save it with np.ascontiguousarray")
        }

        guard let shapeValue = entry("shape") else {
            throw fail("has a header without 'shape'")
        }
        let shapeItems: [NPYHeaderValue]
        switch shapeValue {
        case .tuple(let items), .list(let items): shapeItems = items
        default:
            throw fail("has a malformed header: 'shape' must be a tuple of non-negative integers, found \(shapeValue.pythonText)")
        }
        if shapeItems.count > maxDims {
            throw fail("has \(shapeItems.count) dimensions; at most \(maxDims) are allowed")
        }
        var dims: [Int] = []
        for item in shapeItems {
            guard case .int(let d) = item, d >= 0 else {
                throw fail("has a malformed header: 'shape' contains \(item.pythonText), which is not a non-negative integer")
            }
            dims.append(d)
        }
        guard let count = FormatMath.product(dims), count <= FormatLimits.maxElements else {
            throw fail("has absurd shape \(FormatText.dims(dims)): more than 2^31 elements")
        }
        let dataSize = count * dtype.size
        let dataStart = prelude + headerLength
        let available = bytes.count - dataStart
        if available < dataSize {
            throw fail("is truncated: the header promises shape \(FormatText.dims(dims)) × \(dtype.size)-byte values = \(FormatText.bytes(dataSize)) of data but only \(FormatText.bytes(available)) follow")
        }
        if available > dataSize {
            throw fail("has \(FormatText.bytes(available - dataSize)) of trailing garbage after the \(FormatText.bytes(dataSize)) of data promised by the header (shape \(FormatText.dims(dims)))")
        }

        var values = [Float](repeating: 0, count: count)
        var bad: (index: Int, what: String)? = nil
        bytes.withUnsafeBytes { raw in
            values.withUnsafeMutableBufferPointer { out in
                switch dtype {
                case .u1:
                    for i in 0..<count { out[i] = Float(raw[dataStart + i]) }
                case .f4:
                    for i in 0..<count {
                        let u = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: dataStart + 4 * i, as: UInt32.self))
                        let f = Float(bitPattern: u)
                        if !f.isFinite { bad = (i, f.isNaN ? "NaN" : "Inf"); return }
                        out[i] = f
                    }
                case .f8:
                    for i in 0..<count {
                        let u = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: dataStart + 8 * i, as: UInt64.self))
                        let d = Double(bitPattern: u)
                        let f = Float(d)
                        if !f.isFinite {
                            bad = (i, d.isNaN ? "NaN" : d.isFinite ? "\(d), which is outside Float's range," : "Inf")
                            return
                        }
                        out[i] = f
                    }
                }
            }
        }
        if let bad {
            throw fail("contains \(bad.what) at element \(bad.index) (index \(FormatText.coordinates(of: bad.index, in: dims))); values must be finite")
        }
        return NPYFile(dims: dims, values: values)
    }

    /// Writes a version 1.0 (2.0 if the header is huge) C-order `<f4` array atomically.
    public static func write(float32 values: [Float], dims: [Int], to path: String) throws {
        try AtomicFile.write(try encode(float32: values, dims: dims, path: path), to: path)
    }

    public static func encode(float32 values: [Float], dims: [Int], path: String = "<memory>") throws -> [UInt8] {
        func fail(_ problem: String) -> FormatError { FormatError(path: path, problem: problem) }
        if dims.count > maxDims {
            throw fail("cannot be written as .npy: \(dims.count) dimensions, at most \(maxDims) are allowed")
        }
        guard let count = FormatMath.product(dims), count == values.count else {
            throw fail("cannot be written as .npy: shape \(dims) does not match the \(values.count) values given")
        }
        if let i = values.firstIndex(where: { !$0.isFinite }) {
            throw fail("cannot be written as .npy: element \(i) is \(values[i].isNaN ? "NaN" : "Inf"); values must be finite")
        }
        let shapeText = dims.count == 1 ? "(\(dims[0]),)" : "(" + dims.map(String.init).joined(separator: ", ") + ")"
        var dict = Array("{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }".utf8)
        var major: UInt8 = 1
        var prelude = 10
        if (prelude + dict.count + 1 + 63) / 64 * 64 - prelude > Int(UInt16.max) {
            major = 2
            prelude = 12
        }
        while (prelude + dict.count + 1) % 64 != 0 { dict.append(0x20) }
        dict.append(0x0A)

        var out = magic
        out.append(major)
        out.append(0)
        let len = dict.count
        for k in 0..<(prelude - 8) { out.append(UInt8(truncatingIfNeeded: len >> (8 * k))) }
        out.append(contentsOf: dict)
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: 4 * count))
        out.withUnsafeMutableBytes { raw in
            for (i, v) in values.enumerated() {
                raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: start + 4 * i, as: UInt32.self)
            }
        }
        return out
    }
}

// MARK: - Python literal parsing for .npy headers

/// The subset of Python literals found in .npy headers.
indirect enum NPYHeaderValue: Equatable {
    case string(String)
    case int(Int)
    case bool(Bool)
    case none
    case tuple([NPYHeaderValue])
    case list([NPYHeaderValue])
    case dict([(String, NPYHeaderValue)])

    static func == (a: NPYHeaderValue, b: NPYHeaderValue) -> Bool {
        switch (a, b) {
        case (.string(let x), .string(let y)): return x == y
        case (.int(let x), .int(let y)): return x == y
        case (.bool(let x), .bool(let y)): return x == y
        case (.none, .none): return true
        case (.tuple(let x), .tuple(let y)), (.list(let x), .list(let y)): return x == y
        case (.dict(let x), .dict(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// Short Python-like rendering for error messages.
    var pythonText: String {
        switch self {
        case .string(let s): return "'\(s)'"
        case .int(let v): return String(v)
        case .bool(let b): return b ? "True" : "False"
        case .none: return "None"
        case .tuple(let items): return "(" + items.map(\.pythonText).joined(separator: ", ") + (items.count == 1 ? ",)" : ")")
        case .list(let items): return "[" + items.map(\.pythonText).joined(separator: ", ") + "]"
        case .dict(let entries): return "{" + entries.map { "'\($0.0)': \($0.1.pythonText)" }.joined(separator: ", ") + "}"
        }
    }
}

/// Recursive-descent parser for a single Python literal (dict/tuple/list/str/int/True/False/None),
/// with a nesting limit so hostile headers cannot overflow the stack.
struct NPYHeaderParser {
    struct Failure: Error { let message: String }

    let scalars: [Unicode.Scalar]
    var pos = 0
    var depth = 0
    static let maxDepth = 32

    init(text: String) { scalars = Array(text.unicodeScalars) }

    mutating func parseDocument() throws -> NPYHeaderValue {
        let v = try parseValue()
        skipSpace()
        if pos < scalars.count {
            throw Failure(message: "unexpected '\(Character(scalars[pos]))' at character \(pos) after the dict")
        }
        return v
    }

    mutating func skipSpace() {
        while pos < scalars.count, [" ", "\t", "\n", "\r", "\u{0C}", "\u{0B}"].contains(scalars[pos]) { pos += 1 }
    }

    func near() -> String { pos < scalars.count ? "'\(Character(scalars[pos]))' at character \(pos)" : "end of header" }

    mutating func parseValue() throws -> NPYHeaderValue {
        skipSpace()
        guard pos < scalars.count else { throw Failure(message: "unexpected end of header") }
        let c = scalars[pos]
        switch c {
        case "{":
            return try nested { p in try p.parseDict() }
        case "(":
            return try nested { p in
                let (items, sawComma) = try p.parseSequence(close: ")")
                // `(5)` is just 5 in Python; `(5,)` is a 1-tuple.
                if items.count == 1 && !sawComma { return items[0] }
                return .tuple(items)
            }
        case "[":
            return try nested { p in .list(try p.parseSequence(close: "]").0) }
        case "'", "\"":
            return .string(try parseString())
        case "0"..."9", "-", "+":
            return .int(try parseInt())
        default:
            if c.properties.isAlphabetic || c == "_" {
                var word = ""
                while pos < scalars.count, scalars[pos].properties.isAlphabetic || scalars[pos] == "_" || ("0"..."9").contains(scalars[pos]) {
                    word.unicodeScalars.append(scalars[pos])
                    pos += 1
                }
                switch word {
                case "True": return .bool(true)
                case "False": return .bool(false)
                case "None": return .none
                default: throw Failure(message: "unexpected name '\(word)'")
                }
            }
            throw Failure(message: "unexpected \(near())")
        }
    }

    mutating func nested(_ body: (inout NPYHeaderParser) throws -> NPYHeaderValue) throws -> NPYHeaderValue {
        depth += 1
        defer { depth -= 1 }
        if depth > NPYHeaderParser.maxDepth { throw Failure(message: "nesting deeper than \(NPYHeaderParser.maxDepth) levels") }
        pos += 1  // opening bracket
        return try body(&self)
    }

    mutating func parseDict() throws -> NPYHeaderValue {
        var entries: [(String, NPYHeaderValue)] = []
        while true {
            skipSpace()
            guard pos < scalars.count else { throw Failure(message: "unterminated dict") }
            if scalars[pos] == "}" { pos += 1; return .dict(entries) }
            let key = try parseValue()
            guard case .string(let k) = key else { throw Failure(message: "dict key \(key.pythonText) is not a string") }
            skipSpace()
            guard pos < scalars.count, scalars[pos] == ":" else { throw Failure(message: "expected ':' after key '\(k)' but found \(near())") }
            pos += 1
            let value = try parseValue()
            entries.append((k, value))
            skipSpace()
            guard pos < scalars.count else { throw Failure(message: "unterminated dict") }
            if scalars[pos] == "," { pos += 1; continue }
            if scalars[pos] == "}" { pos += 1; return .dict(entries) }
            throw Failure(message: "expected ',' or '}' in dict but found \(near())")
        }
    }

    mutating func parseSequence(close: Unicode.Scalar) throws -> ([NPYHeaderValue], Bool) {
        var items: [NPYHeaderValue] = []
        var sawComma = false
        while true {
            skipSpace()
            guard pos < scalars.count else { throw Failure(message: "unterminated '\(close == ")" ? "(" : "[")'") }
            if scalars[pos] == close { pos += 1; return (items, sawComma) }
            items.append(try parseValue())
            skipSpace()
            guard pos < scalars.count else { throw Failure(message: "unterminated '\(close == ")" ? "(" : "[")'") }
            if scalars[pos] == "," { pos += 1; sawComma = true; continue }
            if scalars[pos] == close { pos += 1; return (items, sawComma) }
            throw Failure(message: "expected ',' or '\(Character(close))' but found \(near())")
        }
    }

    mutating func parseString() throws -> String {
        let quote = scalars[pos]
        pos += 1
        var out = String.UnicodeScalarView()
        while pos < scalars.count {
            let c = scalars[pos]
            pos += 1
            if c == quote { return String(out) }
            if c == "\n" { throw Failure(message: "line break inside a string") }
            if c == "\\" {
                guard pos < scalars.count else { break }
                let e = scalars[pos]
                pos += 1
                switch e {
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "r": out.append("\r")
                case "0": out.append("\u{0}")
                default: out.append(e)  // \\, \', \" and anything else: keep the character
                }
                continue
            }
            out.append(c)
        }
        throw Failure(message: "unterminated string")
    }

    mutating func parseInt() throws -> Int {
        var text = ""
        if scalars[pos] == "-" || scalars[pos] == "+" {
            text.unicodeScalars.append(scalars[pos])
            pos += 1
        }
        var digits = 0
        while pos < scalars.count, ("0"..."9").contains(scalars[pos]) || scalars[pos] == "_" {
            if scalars[pos] != "_" {
                text.unicodeScalars.append(scalars[pos])
                digits += 1
            }
            pos += 1
        }
        if digits == 0 { throw Failure(message: "expected digits after '\(text)'") }
        // Python 2 era files write long integers as `3L`.
        if pos < scalars.count, scalars[pos] == "L" || scalars[pos] == "l" { pos += 1 }
        if pos < scalars.count, scalars[pos] == "." || scalars[pos] == "e" || scalars[pos] == "E" {
            throw Failure(message: "expected an integer but found a floating-point number near character \(pos)")
        }
        guard let v = Int(text) else { throw Failure(message: "integer \(text) is too large") }
        return v
    }
}
