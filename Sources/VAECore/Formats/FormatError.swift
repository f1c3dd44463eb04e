import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The single error type thrown by every file-format reader and writer in `Formats/`.
///
/// `problem` is a human sentence fragment that reads naturally after the path, e.g.
/// `"is truncated: the header promises 1000×28×28 bytes of pixels but only 1234 follow"`.
public struct FormatError: Error, CustomStringConvertible, Equatable, LocalizedError {
    public let path: String
    public let problem: String

    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }

    public var description: String { "\(path): \(problem)" }
    public var errorDescription: String? { description }
}

// MARK: - Shared helpers (internal to the Formats readers/writers)

/// Limits and small utilities shared by the format readers. Everything here validates before
/// touching memory and reports problems as `FormatError`.
enum FormatLimits {
    /// Largest element count any reader accepts (2^31): beyond that the `[Float]` alone would be 8 GiB.
    static let maxElements = 1 << 31
}

enum FormatFiles {
    /// Reads a whole regular file. Throws a `FormatError` naming the path for a missing file, a
    /// directory, a permission problem or an I/O error.
    static func readAll(_ path: String) throws -> [UInt8] {
        if path.isEmpty {
            throw FormatError(path: "<empty path>", problem: "is not a file name: the path is empty")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let err = errno
            if err == ENOENT {
                throw FormatError(path: path, problem: "does not exist")
            }
            throw FormatError(path: path, problem: "cannot be opened: \(errnoText(err))")
        }
        defer { _ = close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 {
            throw FormatError(path: path, problem: "cannot be examined: \(errnoText(errno))")
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            throw FormatError(path: path, problem: "is a directory, not a file")
        }
        var bytes: [UInt8] = []
        let hinted = Int(st.st_size)
        if (st.st_mode & S_IFMT) == S_IFREG && hinted > 0 {
            bytes.reserveCapacity(hinted)
        }
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { buf -> Int in
                read(fd, buf.baseAddress, buf.count)
            }
            if n < 0 {
                let err = errno
                if err == EINTR { continue }
                if err == EISDIR {
                    throw FormatError(path: path, problem: "is a directory, not a file")
                }
                throw FormatError(path: path, problem: "cannot be read: \(errnoText(err))")
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return bytes
    }

    static func errnoText(_ err: Int32) -> String {
        guard let cstr = strerror(err) else { return "error \(err)" }
        return String(cString: cstr)
    }
}

enum FormatText {
    /// Dimensions joined as the problem sentences show them: `1000×28×28` (or `scalar`).
    static func dims(_ dims: [Int]) -> String {
        dims.isEmpty ? "scalar" : dims.map(String.init).joined(separator: "×")
    }

    /// `1 byte`, `12 bytes`.
    static func bytes(_ n: Int) -> String { n == 1 ? "1 byte" : "\(n) bytes" }

    /// Row-major coordinates of a flat index, e.g. `[3, 14, 2]`.
    static func coordinates(of flat: Int, in dims: [Int]) -> String {
        guard !dims.isEmpty, !dims.contains(where: { $0 <= 0 }) else { return "[\(flat)]" }
        var rest = flat
        var coords = [Int](repeating: 0, count: dims.count)
        for axis in stride(from: dims.count - 1, through: 0, by: -1) {
            coords[axis] = rest % dims[axis]
            rest /= dims[axis]
        }
        return "[" + coords.map(String.init).joined(separator: ", ") + "]"
    }

    /// Shows a few bytes in hex, for "bad magic" messages.
    static func hex(_ bytes: ArraySlice<UInt8>) -> String {
        bytes.map { b in
            let s = String(b, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined(separator: " ")
    }
}

enum FormatMath {
    /// Product of dimensions with overflow detection; `nil` when it overflows `Int` or a dim is negative.
    static func product(_ dims: [Int]) -> Int? {
        var total = 1
        for d in dims {
            guard d >= 0 else { return nil }
            let (p, overflow) = total.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            total = p
        }
        return total
    }
}
