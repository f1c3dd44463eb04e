import Foundation

/// A numeric CSV file read as a matrix: comma-separated, one row per line (`\n` or `\r\n`), blank
/// lines ignored, an optional header row (detected when the first row is not all numbers), fields
/// optionally wrapped in double quotes (`""` escapes a quote; no line breaks inside fields).
/// Every data row must have the same number of columns and every field must be a finite number.
public struct CSVMatrix {
    /// `[rows, cols]` (data rows only; the header is not counted).
    public let dims: [Int]
    /// Row-major values.
    public let values: [Float]
    /// Column names, when the first row was a header.
    public let header: [String]?

    public init(dims: [Int], values: [Float], header: [String]? = nil) {
        self.dims = dims
        self.values = values
        self.header = header
    }

    public static func read(path: String) throws -> CSVMatrix {
        let bytes = try FormatFiles.readAll(path)
        return try parse(bytes, path: path)
    }

    public static func parse(text: String, path: String) throws -> CSVMatrix {
        try parse(Array(text.utf8), path: path)
    }

    public static func parse(_ bytes: [UInt8], path: String) throws -> CSVMatrix {
        func fail(_ problem: String) -> FormatError { FormatError(path: path, problem: problem) }

        if bytes.isEmpty {
            throw fail("is empty: a CSV matrix needs at least one row of numbers")
        }
        if let nul = bytes.firstIndex(of: 0) {
            throw fail("contains a NUL byte at offset \(nul); this looks like a binary file, not CSV text")
        }
        var start = 0
        if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { start = 3 }  // UTF-8 BOM

        var header: [String]? = nil
        var columns = 0
        var firstLine = 0
        var rows = 0
        var values: [Float] = []
        var lineNumber = 0
        var lineStart = start

        while lineStart <= bytes.count {
            lineNumber += 1
            var lineEnd = lineStart
            while lineEnd < bytes.count && bytes[lineEnd] != 0x0A { lineEnd += 1 }
            let next = lineEnd + 1
            var contentEnd = lineEnd
            if contentEnd > lineStart && bytes[contentEnd - 1] == 0x0D { contentEnd -= 1 }
            let line = bytes[lineStart..<contentEnd]
            lineStart = next

            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }  // blank line

            let fields: [ArraySlice<UInt8>]
            do {
                fields = try splitFields(line)
            } catch let e as FieldError {
                throw fail("line \(lineNumber): \(e.message)")
            }

            if columns == 0 {
                // First non-blank row: data if every field is a number, otherwise a header.
                columns = fields.count
                firstLine = lineNumber
                let numbers = fields.map(number)
                if numbers.contains(where: { $0 == nil }) {
                    header = fields.map { String(decoding: $0, as: UTF8.self) }
                    continue
                }
            } else if fields.count != columns {
                let firstDesc = header != nil ? "the header (line \(firstLine))" : "the first row (line \(firstLine))"
                throw fail("line \(lineNumber) has \(fields.count) column\(fields.count == 1 ? "" : "s") but \(firstDesc) has \(columns); every row must have the same number of columns")
            }

            if values.count + columns > FormatLimits.maxElements {
                throw fail("is too large: more than 2^31 values")
            }
            for (c, field) in fields.enumerated() {
                let text = String(decoding: field, as: UTF8.self)
                if text.isEmpty {
                    throw fail("line \(lineNumber), column \(c + 1) is empty; every field must be a number")
                }
                guard let v = number(field) else {
                    throw fail("line \(lineNumber), column \(c + 1): '\(text)' is not a number")
                }
                if !v.isFinite {
                    let why = v.isNaN ? "NaN" : (Double(text).map { $0.isFinite } ?? false) ? "outside Float's range" : "infinite"
                    throw fail("line \(lineNumber), column \(c + 1): '\(text)' is \(why); values must be finite")
                }
                values.append(v)
            }
            rows += 1
        }

        if rows == 0 {
            if header != nil {
                throw fail("has a header row (line \(firstLine)) but no data rows")
            }
            throw fail("is empty: it contains only blank lines")
        }
        return CSVMatrix(dims: [rows, columns], values: values, header: header)
    }

    struct FieldError: Error { let message: String }

    /// Splits one line on commas, honouring double-quoted fields; trims spaces and tabs around
    /// unquoted fields and removes the quotes from quoted ones.
    static func splitFields(_ line: ArraySlice<UInt8>) throws -> [ArraySlice<UInt8>] {
        let quote = UInt8(ascii: "\""), comma = UInt8(ascii: ","), space = UInt8(ascii: " "), tab = UInt8(ascii: "\t")
        var fields: [ArraySlice<UInt8>] = []
        var i = line.startIndex
        let end = line.endIndex
        while true {
            // Skip leading blanks.
            while i < end && (line[i] == space || line[i] == tab) { i += 1 }
            if i < end && line[i] == quote {
                var content: [UInt8] = []
                i += 1
                var closed = false
                while i < end {
                    if line[i] == quote {
                        if i + 1 < end && line[i + 1] == quote {
                            content.append(quote)
                            i += 2
                            continue
                        }
                        i += 1
                        closed = true
                        break
                    }
                    content.append(line[i])
                    i += 1
                }
                if !closed {
                    throw FieldError(message: "field \(fields.count + 1) has an unterminated quote")
                }
                while i < end && (line[i] == space || line[i] == tab) { i += 1 }
                if i < end && line[i] != comma {
                    throw FieldError(message: "field \(fields.count + 1) has text after its closing quote")
                }
                fields.append(content[...])
            } else {
                let fieldStart = i
                while i < end && line[i] != comma { i += 1 }
                var fieldEnd = i
                while fieldEnd > fieldStart && (line[fieldEnd - 1] == space || line[fieldEnd - 1] == tab) { fieldEnd -= 1 }
                fields.append(line[fieldStart..<fieldEnd])
            }
            if i < end && line[i] == comma {
                i += 1
                continue
            }
            return fields
        }
    }

    /// A decimal number (optionally signed, with fraction/exponent), or `nan`/`inf`; nil otherwise.
    static func number(_ field: ArraySlice<UInt8>) -> Float? {
        if field.isEmpty || field.count > 64 { return nil }
        // Only plain ASCII number syntax: reject hex floats and anything exotic up front.
        for b in field {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
                 UInt8(ascii: "e"), UInt8(ascii: "E"):
                continue
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"):
                continue  // nan / inf / infinity, checked below
            default:
                return nil
            }
        }
        let text = String(decoding: field, as: UTF8.self)
        let lower = text.lowercased()
        let body = lower.hasPrefix("-") || lower.hasPrefix("+") ? String(lower.dropFirst()) : lower
        if body.contains(where: { $0.isLetter && $0 != "e" }) {
            guard ["nan", "inf", "infinity"].contains(body) else { return nil }
        }
        return Float(text)
    }
}
