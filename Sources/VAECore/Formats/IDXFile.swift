import Foundation

/// MNIST's IDX format: a big-endian `UInt32` magic `0x0000TTDD` (TT = element type code, DD = number
/// of dimensions), one big-endian `UInt32` per dimension, then the elements in row-major order, big-endian.
///
/// Type codes: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64.
/// Every value is converted to `Float`. The reader rejects anything that is not exactly one well-formed
/// IDX array (including trailing bytes and non-finite floats) with a `FormatError`.
public struct IDXFile {
    public let dims: [Int]
    public let values: [Float]

    public init(dims: [Int], values: [Float]) {
        self.dims = dims
        self.values = values
    }

    /// Most dimensions the reader accepts (MNIST uses 1 for labels and 3 for images).
    public static let maxDims = 8

    enum ElementType: UInt8 {
        case uint8 = 0x08, int8 = 0x09, int16 = 0x0B, int32 = 0x0C, float32 = 0x0D, float64 = 0x0E

        var size: Int {
            switch self {
            case .uint8, .int8: return 1
            case .int16: return 2
            case .int32, .float32: return 4
            case .float64: return 8
            }
        }

        var name: String {
            switch self {
            case .uint8: return "uint8"
            case .int8: return "int8"
            case .int16: return "int16"
            case .int32: return "int32"
            case .float32: return "float32"
            case .float64: return "float64"
            }
        }
    }

    public static func read(path: String) throws -> IDXFile {
        let bytes = try FormatFiles.readAll(path)
        return try parse(bytes, path: path)
    }

    public static func parse(_ bytes: [UInt8], path: String) throws -> IDXFile {
        func fail(_ problem: String) -> FormatError { FormatError(path: path, problem: problem) }

        if bytes.isEmpty {
            throw fail("is empty: an IDX file needs at least a 4-byte magic number")
        }
        if bytes.count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B {
            throw fail("is gzip-compressed (magic 1f 8b), not a raw IDX file; decompress it first (e.g. gunzip)")
        }
        if bytes.count < 4 {
            throw fail("is too short for an IDX header: \(FormatText.bytes(bytes.count)), but the magic number alone needs 4")
        }
        if bytes[0] != 0 || bytes[1] != 0 {
            throw fail("has a bad magic number (\(FormatText.hex(bytes[0..<4]))): the first two bytes of an IDX file must be 0")
        }
        guard let type = ElementType(rawValue: bytes[2]) else {
            throw fail("has an unknown IDX type code 0x\(FormatText.hex(bytes[2...2]).uppercased()) in its magic number; expected 0x08 (uint8), 0x09 (int8), 0x0B (int16), 0x0C (int32), 0x0D (float32) or 0x0E (float64)")
        }
        let rank = Int(bytes[3])
        if rank == 0 {
            throw fail("has an IDX header declaring 0 dimensions; expected between 1 and \(maxDims)")
        }
        if rank > maxDims {
            throw fail("has an IDX header declaring \(rank) dimensions; vaec reads at most \(maxDims)")
        }
        let headerSize = 4 + 4 * rank
        if bytes.count < headerSize {
            throw fail("is truncated in its header: \(rank) dimensions need a \(headerSize)-byte header but the file has only \(FormatText.bytes(bytes.count))")
        }
        var dims: [Int] = []
        dims.reserveCapacity(rank)
        for axis in 0..<rank {
            let o = 4 + 4 * axis
            let d = Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3])
            dims.append(d)
        }
        if let zero = dims.firstIndex(of: 0) {
            throw fail("has dimension \(zero) of size 0 (dims \(FormatText.dims(dims))); an IDX array must not be empty")
        }
        guard let count = FormatMath.product(dims), count <= FormatLimits.maxElements else {
            throw fail("has absurd dimensions \(FormatText.dims(dims)): more than 2^31 elements")
        }
        let (dataSize, overflow) = count.multipliedReportingOverflow(by: type.size)
        if overflow {
            throw fail("has absurd dimensions \(FormatText.dims(dims)): the data size overflows")
        }
        let available = bytes.count - headerSize
        if available < dataSize {
            let what = type == .uint8 ? "bytes" : "\(type.name) values (\(type.size) bytes each)"
            throw fail("is truncated: the header promises \(FormatText.dims(dims)) \(what) = \(FormatText.bytes(dataSize)) of data but only \(FormatText.bytes(available)) follow")
        }
        if available > dataSize {
            throw fail("has \(FormatText.bytes(available - dataSize)) of trailing garbage after the \(FormatText.bytes(dataSize)) of data promised by the header (dims \(FormatText.dims(dims)), \(type.name))")
        }

        var values = [Float](repeating: 0, count: count)
        var badIndex: Int? = nil
        bytes.withUnsafeBufferPointer { all in
            values.withUnsafeMutableBufferPointer { out in
                let p = UnsafeBufferPointer(rebasing: all[headerSize...])
                switch type {
                case .uint8:
                    for i in 0..<count { out[i] = Float(p[i]) }
                case .int8:
                    for i in 0..<count { out[i] = Float(Int8(bitPattern: p[i])) }
                case .int16:
                    for i in 0..<count {
                        let u = UInt16(p[2 * i]) << 8 | UInt16(p[2 * i + 1])
                        out[i] = Float(Int16(bitPattern: u))
                    }
                case .int32:
                    for i in 0..<count {
                        let o = 4 * i
                        let u = UInt32(p[o]) << 24 | UInt32(p[o + 1]) << 16 | UInt32(p[o + 2]) << 8 | UInt32(p[o + 3])
                        out[i] = Float(Int32(bitPattern: u))
                    }
                case .float32:
                    for i in 0..<count {
                        let o = 4 * i
                        let u = UInt32(p[o]) << 24 | UInt32(p[o + 1]) << 16 | UInt32(p[o + 2]) << 8 | UInt32(p[o + 3])
                        let f = Float(bitPattern: u)
                        if !f.isFinite { badIndex = i; return }
                        out[i] = f
                    }
                case .float64:
                    for i in 0..<count {
                        let o = 8 * i
                        var u: UInt64 = 0
                        for k in 0..<8 { u = u << 8 | UInt64(p[o + k]) }
                        let d = Double(bitPattern: u)
                        let f = Float(d)
                        if !f.isFinite { badIndex = i; return }
                        out[i] = f
                    }
                }
            }
        }
        if let i = badIndex {
            let found: String
            if type == .float64 {
                let o = headerSize + 8 * i
                var u: UInt64 = 0
                for k in 0..<8 { u = u << 8 | UInt64(bytes[o + k]) }
                let d = Double(bitPattern: u)
                found = d.isNaN ? "NaN" : d.isFinite ? "\(d), which is outside Float's range," : "Inf"
            } else {
                let o = headerSize + 4 * i
                let u = UInt32(bytes[o]) << 24 | UInt32(bytes[o + 1]) << 16 | UInt32(bytes[o + 2]) << 8 | UInt32(bytes[o + 3])
                found = Float(bitPattern: u).isNaN ? "NaN" : "Inf"
            }
            throw fail("contains \(found) at element \(i) (index \(FormatText.coordinates(of: i, in: dims))); \(type.name) values must be finite")
        }
        return IDXFile(dims: dims, values: values)
    }

    /// Writes an IDX file of unsigned bytes (type code 0x08) atomically.
    public static func write(uint8 values: [UInt8], dims: [Int], to path: String) throws {
        let bytes = try encode(uint8: values, dims: dims, path: path)
        try AtomicFile.write(bytes, to: path)
    }

    /// The bytes of an IDX uint8 file; validates `dims` against `values.count`.
    public static func encode(uint8 values: [UInt8], dims: [Int], path: String = "<memory>") throws -> [UInt8] {
        func fail(_ problem: String) -> FormatError { FormatError(path: path, problem: problem) }
        if dims.isEmpty || dims.count > maxDims {
            throw fail("cannot be written as IDX: \(dims.count) dimensions given, expected between 1 and \(maxDims)")
        }
        if let bad = dims.first(where: { $0 <= 0 || $0 > Int(UInt32.max) }) {
            throw fail("cannot be written as IDX: dimension size \(bad) is not between 1 and 2^32-1")
        }
        guard let count = FormatMath.product(dims), count == values.count else {
            throw fail("cannot be written as IDX: dims \(FormatText.dims(dims)) do not match the \(values.count) values given")
        }
        var out: [UInt8] = [0, 0, ElementType.uint8.rawValue, UInt8(dims.count)]
        out.reserveCapacity(4 + 4 * dims.count + count)
        for d in dims {
            let u = UInt32(d)
            out.append(UInt8(truncatingIfNeeded: u >> 24))
            out.append(UInt8(truncatingIfNeeded: u >> 16))
            out.append(UInt8(truncatingIfNeeded: u >> 8))
            out.append(UInt8(truncatingIfNeeded: u))
        }
        out.append(contentsOf: values)
        return out
    }
}
