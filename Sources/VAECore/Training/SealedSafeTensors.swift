import Foundation

/// A safetensors file that says what it is and proves it is intact. Safetensors itself has neither a
/// format version nor a checksum, so vaec's checkpoint files carry three metadata entries:
///
///     "format": "vaec-checkpoint" (or "vaec-training-state")
///     "format_version": "1"
///     "crc32": 8 hex digits, the CRC-32 of the data buffer (every tensor's bytes)
///
/// The metadata itself is JSON that the reader validates field by field, so the checksum covers the
/// part where a flipped bit would silently change a number. Other readers (PyTorch's
/// `safetensors.torch.load_file`) ignore the metadata, so the file stays an ordinary safetensors file.
public enum SealedSafeTensors {
    static let formatKey = "format"
    static let versionKey = "format_version"
    static let checksumKey = "crc32"

    /// Writes atomically (temporary file, fsync, rename: `SafeTensors.write`).
    public static func write(_ file: SafeTensors, format: String, version: Int, to path: String) throws {
        var sealed = file
        sealed.metadata[formatKey] = format
        sealed.metadata[versionKey] = String(version)
        // Encode once with a placeholder checksum of the final width, then patch the eight digits in
        // the header: the data buffer does not depend on the metadata, and one encoding of a large
        // training state is all the memory this needs.
        sealed.metadata[checksumKey] = placeholder
        try sealed.validate(path: path)
        var bytes = sealed.encoded()
        let digits = Array(hex(dataChecksum(bytes)).utf8)
        let marker = Array("\"\(checksumKey)\":\"\(placeholder)\"".utf8)
        guard let at = firstIndex(of: marker, in: bytes, before: min(bytes.count, 8 + headerLength(bytes))) else {
            throw FormatError(path: path, problem: "could not be sealed (no checksum entry in its header)")
        }
        let start = at + marker.count - 1 - digits.count
        for (k, d) in digits.enumerated() { bytes[start + k] = d }
        try AtomicFile.write(bytes, to: path)
    }

    /// Reads and verifies format name, version and checksum; `what` names the file's role in errors
    /// ("checkpoint", "training state").
    public static func read(path: String, format: String, version: Int, what: String) throws -> SafeTensors {
        try decode(try FormatFiles.readAll(path), path: path, format: format, version: version, what: what)
    }

    public static func decode(_ bytes: [UInt8], path: String, format: String, version: Int, what: String) throws -> SafeTensors {
        func fail(_ problem: String) -> FormatError { FormatError(path: path, problem: problem) }
        let file = try SafeTensors.parse(bytes, path: path)
        guard let found = file.metadata[formatKey] else {
            throw fail("is a safetensors file but not a vaec \(what): its metadata has no 'format' entry")
        }
        guard found == format else {
            throw fail("is a '\(found)' file, not a vaec \(what) ('\(format)')")
        }
        guard let versionText = file.metadata[versionKey], let fileVersion = Int(versionText) else {
            throw fail("is a vaec \(what) without a valid format version in its metadata")
        }
        guard fileVersion == version else {
            throw fail("was written by a vaec with \(what) format \(fileVersion); this vaec reads format \(version)")
        }
        guard let crcText = file.metadata[checksumKey] else {
            throw fail("has no checksum (no 'crc32' entry in its metadata), so it cannot be trusted as a vaec \(what)")
        }
        guard crcText.count == 8, let crc = UInt32(crcText, radix: 16) else {
            throw fail("has a malformed checksum '\(crcText)' in its metadata (expected 8 hex digits)")
        }
        let actual = dataChecksum(bytes)
        guard actual == crc else {
            throw fail("is damaged: the CRC-32 of its data is \(hex(actual)), but its metadata says \(crcText)")
        }
        return file
    }

    static let placeholder = "00000000"

    static func headerLength(_ bytes: [UInt8]) -> Int {
        var n: UInt64 = 0
        for k in 0..<8 { n |= UInt64(bytes[k]) << (8 * UInt64(k)) }
        return Int(n)
    }

    static func firstIndex(of needle: [UInt8], in haystack: [UInt8], before end: Int) -> Int? {
        guard needle.count <= end else { return nil }
        var i = 8
        while i + needle.count <= end {
            if haystack[i] == needle[0] && Array(haystack[i..<i + needle.count]) == needle { return i }
            i += 1
        }
        return nil
    }

    /// CRC-32 of the data buffer of an encoded safetensors file (everything after the JSON header).
    /// Only called on bytes that `SafeTensors.parse` accepted or that `encoded()` produced, so the
    /// header length is in range.
    static func dataChecksum(_ bytes: [UInt8]) -> UInt32 {
        let start = 8 + headerLength(bytes)
        return bytes.withUnsafeBytes { raw in CRC32.checksum(UnsafeRawBufferPointer(rebasing: raw[start...])) }
    }

    static func hex(_ crc: UInt32) -> String {
        let digits = String(crc, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }
}
