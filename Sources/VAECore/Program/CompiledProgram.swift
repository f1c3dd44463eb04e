import Foundation

/// What `vaec compile` writes (`.vaek`) and `vaec run` executes: the checked model and its optimised
/// graph (forward, gradient and metrics).
///
/// File layout: the line `VAEK <format version>\n`, the line `crc32 <8 hex digits> length <bytes>\n`, then
/// that many bytes of JSON. The checksum covers the JSON, so an edited or truncated file is refused
/// before anything in it is used.
public struct CompiledProgram: Codable, Sendable {
    public static let formatVersion = 1
    public var vaecVersion: String = VAECVersion.current
    public var model: ModelSpec
    public var graph: Graph

    public init(model: ModelSpec, graph: Graph) { self.model = model; self.graph = graph }

    public func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = [UInt8](try encoder.encode(self))
        let header = "VAEK \(Self.formatVersion)\ncrc32 \(String(format: "%08x", CRC32.checksum(json))) length \(json.count)\n"
        return Array(header.utf8) + json
    }

    public func write(to path: String) throws { try AtomicFile.write(try encoded(), to: path) }

    public static func read(path: String) throws -> CompiledProgram {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FormatError(path: path, problem: "cannot be read (missing or not a file)")
        }
        return try decode([UInt8](data), path: path)
    }

    public static func decode(_ bytes: [UInt8], path: String) throws -> CompiledProgram {
        func fail(_ problem: String) -> FormatError { FormatError(path: path, problem: problem) }
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        for (i, b) in bytes.enumerated() where b == UInt8(ascii: "\n") && lines.count < 2 && i - start < 200 {
            lines.append(bytes[start..<i]); start = i + 1
        }
        guard lines.count == 2 else { throw fail("is not a compiled vaec program (no VAEK header)") }
        let first = String(decoding: lines[0], as: UTF8.self).split(separator: " ")
        guard first.count == 2, first[0] == "VAEK", let version = Int(first[1]) else {
            throw fail("is not a compiled vaec program (no VAEK header)")
        }
        guard version == formatVersion else {
            throw fail("was compiled by a vaec with program format \(version); this vaec reads format \(formatVersion): compile the .vae file again")
        }
        let second = String(decoding: lines[1], as: UTF8.self).split(separator: " ")
        guard second.count == 4, second[0] == "crc32", second[2] == "length",
              let crc = UInt32(second[1], radix: 16), let length = Int(second[3]), length >= 0 else {
            throw fail("has a damaged header (expected 'crc32 <hex> length <bytes>')")
        }
        let body = Array(bytes[start...])
        guard body.count == length else {
            throw fail(body.count < length ? "is truncated: \(body.count) of \(length) bytes of program"
                                           : "has \(body.count - length) bytes after the program")
        }
        guard CRC32.checksum(body) == crc else { throw fail("is damaged: its checksum does not match its contents") }
        let program: CompiledProgram
        do { program = try JSONDecoder().decode(CompiledProgram.self, from: Data(body)) } catch {
            throw fail("holds a program this vaec cannot read (\(error))")
        }
        try program.validate(path: path)
        return program
    }

    /// Structural checks on a decoded program, so the runtime never indexes out of range.
    func validate(path: String) throws {
        func fail(_ problem: String) -> FormatError { FormatError(path: path, problem: problem) }
        for (id, node) in graph.nodes.enumerated() {
            guard node.operands.count == node.op.arity, node.operands.allSatisfy({ $0 >= 0 && $0 < id }) else {
                throw fail("is damaged: node %\(id) has invalid operands")
            }
            guard node.shape.dims.allSatisfy({ $0 >= 1 && $0 <= 1 << 24 }), node.shape.featureCount <= 1 << 28 else {
                throw fail("is damaged: node %\(id) has an invalid shape")
            }
            if node.op.kind != .leaf {
                guard let s = try? ShapeRules.infer(node.op, node.operands.map { graph[$0].shape }), s == node.shape else {
                    throw fail("is damaged: node %\(id) has an inconsistent shape")
                }
            }
        }
        for (_, value) in graph.outputs where value < 0 || value >= graph.nodes.count {
            throw fail("is damaged: an output refers to a missing node")
        }
        for p in model.parameters {
            guard let id = graph.nodes.firstIndex(where: { $0.op == .parameter(p.name) }) else { continue }
            guard graph[id].shape == Shape(batched: false, p.dims) else {
                throw fail("is damaged: parameter '\(p.name)' has an inconsistent shape")
            }
        }
    }
}

public enum VAECVersion {
    public static let current = "0.1.0"
}
