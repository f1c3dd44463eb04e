import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Standard CRC-32 (zlib / PNG / gzip: reflected polynomial 0xEDB88320, initial value and final
/// xor 0xFFFFFFFF). `checksum("123456789") == 0xCBF43926`.
public enum CRC32 {
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 {
            c = (c & 1) != 0 ? (0xEDB8_8320 ^ (c >> 1)) : (c >> 1)
        }
        return c
    }

    /// Slicing-by-8 tables: `slices[k][b]` is the CRC of byte b followed by k zero bytes, so eight
    /// bytes are folded per step (a checkpoint's megabytes cost milliseconds, not tens of them).
    static let slices: [[UInt32]] = {
        var tables = [table]
        for k in 1..<8 {
            tables.append((0..<256).map { n in
                let previous = tables[k - 1][n]
                return table[Int(previous & 0xFF)] ^ (previous >> 8)
            })
        }
        return tables
    }()

    /// Continues a running CRC (pass the previous result as `crc`, 0 to start).
    public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var c = ~crc
        let flat = slices.flatMap { $0 }
        flat.withUnsafeBufferPointer { t in
            var i = 0
            let n = bytes.count
            while i + 8 <= n {
                let low = c ^ (UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
                let high = UInt32(bytes[i + 4]) | UInt32(bytes[i + 5]) << 8 | UInt32(bytes[i + 6]) << 16 | UInt32(bytes[i + 7]) << 24
                c = t[7 * 256 + Int(low & 0xFF)] ^ t[6 * 256 + Int((low >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((low >> 16) & 0xFF)] ^ t[4 * 256 + Int(low >> 24)]
                    ^ t[3 * 256 + Int(high & 0xFF)] ^ t[2 * 256 + Int((high >> 8) & 0xFF)]
                    ^ t[1 * 256 + Int((high >> 16) & 0xFF)] ^ t[Int(high >> 24)]
                i += 8
            }
            while i < n {
                c = t[Int((c ^ UInt32(bytes[i])) & 0xFF)] ^ (c >> 8)
                i += 1
            }
        }
        return ~c
    }

    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        update(0, bytes)
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { update(0, $0) }
    }
}

/// Adler-32 (zlib). `checksum("Wikipedia") == 0x11E60398`.
public enum Adler32 {
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        let mod: UInt32 = 65521
        let nmax = 5552  // largest n such that 255n(n+1)/2 + (n+1)(mod-1) fits in UInt32
        var a: UInt32 = 1
        var b: UInt32 = 0
        bytes.withUnsafeBufferPointer { buf in
            var i = 0
            while i < buf.count {
                let end = min(buf.count, i + nmax)
                while i < end {
                    a &+= UInt32(buf[i])
                    b &+= a
                    i += 1
                }
                a %= mod
                b %= mod
            }
        }
        return (b << 16) | a
    }
}

/// Crash-safe whole-file replacement: the bytes go to `"\(path).tmp-<pid>"` in the same directory,
/// are fsync'd, and the temp file is renamed over `path` (then the directory is fsync'd, best effort).
/// Readers therefore see either the old file or the complete new one, never a torn write.
public enum AtomicFile {
    public static func write(_ bytes: [UInt8], to path: String) throws {
        if path.isEmpty {
            throw FormatError(path: "<empty path>", problem: "cannot be written: the path is empty")
        }
        if path.hasSuffix("/") {
            throw FormatError(path: path, problem: "cannot be written: the path names a directory")
        }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: parent, isDirectory: &isDir) {
                if !isDir.boolValue {
                    throw FormatError(path: path, problem: "cannot be written: its parent '\(parent)' is a file, not a directory")
                }
            } else {
                do {
                    try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
                } catch {
                    throw FormatError(path: path, problem: "cannot be written: creating the directory '\(parent)' failed (\(error.localizedDescription))")
                }
            }
        }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            throw FormatError(path: path, problem: "cannot be written: it is an existing directory")
        }

        let temp = "\(path).tmp-\(getpid())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 {
            throw FormatError(path: path, problem: "cannot be written: creating the temporary file '\(temp)' failed (\(FormatFiles.errnoText(errno)))")
        }
        var closed = false
        var committed = false
        defer {
            if !closed { _ = close(fd) }
            if !committed { _ = unlink(temp) }
        }

        var failure: String?
        bytes.withUnsafeBytes { raw in
            guard let base = raw.baseAddress else { return }  // nothing to write
            var offset = 0
            while offset < raw.count {
                let n = atomicFilePOSIXWrite(fd, base + offset, raw.count - offset)
                if n < 0 {
                    let err = errno
                    if err == EINTR { continue }
                    failure = "writing failed after \(offset) of \(raw.count) bytes (\(FormatFiles.errnoText(err)))"
                    return
                }
                if n == 0 {
                    failure = "writing made no progress after \(offset) of \(raw.count) bytes"
                    return
                }
                offset += n
            }
        }
        if let failure { throw FormatError(path: path, problem: "cannot be written: \(failure)") }
        if fsync(fd) != 0 {
            throw FormatError(path: path, problem: "cannot be written: fsync failed (\(FormatFiles.errnoText(errno)))")
        }
        closed = true
        if close(fd) != 0 {
            throw FormatError(path: path, problem: "cannot be written: closing the temporary file failed (\(FormatFiles.errnoText(errno)))")
        }
        if rename(temp, path) != 0 {
            throw FormatError(path: path, problem: "cannot be written: renaming '\(temp)' over it failed (\(FormatFiles.errnoText(errno)))")
        }
        committed = true
        // Make the rename itself durable (best effort: not every file system allows fsync on a directory).
        let dirFD = open(parent.isEmpty ? "." : parent, O_RDONLY | O_CLOEXEC)
        if dirFD >= 0 {
            _ = fsync(dirFD)
            _ = close(dirFD)
        }
    }
}

/// `write(2)`, named so it cannot be confused with `AtomicFile.write` inside the enum.
@inline(__always)
private func atomicFilePOSIXWrite(_ fd: Int32, _ buf: UnsafeRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    return Glibc.write(fd, buf, count)
    #else
    return Darwin.write(fd, buf, count)
    #endif
}
