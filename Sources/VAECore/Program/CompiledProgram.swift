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
            throw fail("was compiled by another version of vaec (program format \(version); this vaec \(VAECVersion.current) reads format \(formatVersion)): compile the .vae file again")
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
            throw fail("holds a program this vaec cannot read: \(Self.explain(error))")
        }
        try program.validate(path: path)
        return program
    }

    /// A decoding error as a short sentence naming where in the JSON it is.
    static func explain(_ error: Error) -> String {
        func at(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return path.isEmpty ? "at the top level" : "at \(path.hasPrefix(".") ? String(path.dropFirst()) : path)"
        }
        switch error {
        case DecodingError.keyNotFound(let key, let context): return "the entry '\(key.stringValue)' is missing \(at(context))"
        case DecodingError.typeMismatch(_, let context): return "an entry has the wrong type \(at(context))"
        case DecodingError.valueNotFound(_, let context): return "a value is missing \(at(context))"
        case DecodingError.dataCorrupted(let context): return "its JSON is malformed or holds an unknown value \(at(context))"
        default: return "\(error)"
        }
    }

    /// Structural checks on a decoded program, so the runtime never indexes out of range, reads past a
    /// buffer or allocates an absurd amount: every operand precedes its node, every shape is within
    /// `SizeLimits` and agrees with its op's shape rule, every leaf is one the trainer binds (with the
    /// shape of the buffer it binds), and every output the trainer reads exists with the right shape.
    func validate(path: String) throws {
        func fail(_ problem: String) -> FormatError { FormatError(path: path, problem: "is damaged: " + problem) }
        let model = self.model
        guard (1...1_000_000).contains(model.train.batch), model.train.epochs >= 0 else {
            throw fail("its batch size \(model.train.batch) or epoch count \(model.train.epochs) is out of range")
        }
        guard !model.input.dims.isEmpty, model.input.dims.allSatisfy({ $0 >= 1 }),
              SizeLimits.fits(model.input.dims, within: SizeLimits.maxFeatures) else {
            throw fail("its input has the shape \(model.input.dims)")
        }
        guard model.latent.dims.count == 1, model.latent.dims[0] >= 1, model.latent.dims[0] <= SizeLimits.maxFeatures else {
            throw fail("its latent has the shape \(model.latent.dims)")
        }
        var parameterShapes: [String: [Int]] = [:]
        var totalParameters = 0
        for p in model.parameters {
            guard p.dims.allSatisfy({ $0 >= 1 }), let count = SizeLimits.product(p.dims), count <= SizeLimits.maxParameters,
                  parameterShapes.updateValue(p.dims, forKey: p.name) == nil else {
                throw fail("parameter '\(p.name)' has an invalid shape \(p.dims) or appears twice")
            }
            totalParameters += count
            guard totalParameters <= SizeLimits.maxParameters else { throw fail("it has more than \(SizeLimits.maxParameters) parameters") }
        }
        try Self.validate(model.graph, of: model, parameterShapes: parameterShapes, fail: { fail("in its checked graph, " + $0) })
        try Self.validate(graph, of: model, parameterShapes: parameterShapes, fail: fail)
        // What the trainer reads: three scalars and one gradient per parameter, shaped like it.
        for name in [OutputName.loss, OutputName.reconstruction, OutputName.kl] {
            guard let id = graph.output(name), graph[id].shape == .scalar else { throw fail("it has no scalar output '\(name)'") }
        }
        for p in model.parameters {
            guard let id = graph.output(OutputName.gradient(p.name)), graph[id].shape == Shape(batched: false, p.dims) else {
                throw fail("it has no gradient of shape \(p.dims) for parameter '\(p.name)'")
            }
        }
    }

    /// One graph's nodes and outputs: operands in range and in order, shapes within limits and as
    /// the shape rules say, leaves that the trainer can bind.
    static func validate(_ graph: Graph, of model: ModelSpec, parameterShapes: [String: [Int]],
                         fail: (String) -> FormatError) throws {
        for (id, node) in graph.nodes.enumerated() {
            guard node.operands.count == node.op.arity, node.operands.allSatisfy({ $0 >= 0 && $0 < id }) else {
                throw fail("node %\(id) has invalid operands")
            }
            guard node.shape.dims.allSatisfy({ $0 >= 1 && $0 <= SizeLimits.maxFeatures }),
                  SizeLimits.fits(node.shape.dims, within: SizeLimits.maxParameters) else {
                throw fail("node %\(id) has an invalid shape")
            }
            let expected: Shape?
            switch node.op {
            case .parameter(let name):
                guard let dims = parameterShapes[name] else { throw fail("node %\(id) reads a parameter '\(name)' the model does not declare") }
                expected = Shape(batched: false, dims)
            case .input(let name):
                guard name == model.input.name else { throw fail("node %\(id) reads an input '\(name)' the model does not declare") }
                expected = Shape(batched: true, model.input.storedDims)
            case .noise(let name):
                guard name == model.latent.name else { throw fail("node %\(id) draws noise for a latent '\(name)' the model does not declare") }
                expected = Shape(batched: true, model.latent.dims)
            case .hyper, .constant:
                expected = .scalar
            default:
                expected = try? ShapeRules.infer(node.op, node.operands.map { graph[$0].shape })
            }
            guard let expected, expected == node.shape else {
                throw fail("node %\(id) has an inconsistent shape")
            }
        }
        guard graph.outputsArePaired else { throw fail("its list of outputs is inconsistent") }
        for (_, value) in graph.outputs where value < 0 || value >= graph.nodes.count {
            throw fail("an output refers to a missing node")
        }
    }
}

public enum VAECVersion {
    public static let current = "0.1.0"
}
