import Foundation

/// The whole front and middle end: source → AST → checked IR → gradient IR → optimised IR.
public enum Compiler {
    /// The optimisation pipeline, in order; each pass can be dumped after (`--dump-after NAME`).
    public static let passes: [any Pass] = [StabilizePass(), SimplifyPass(), CSEPass(), DeadCodePass()]
    /// Every pass `--dump-after` can name: the graph passes, then the lowering into a kernel program
    /// (`fuse`, `stage`, `plan`: see Lowering/).
    public static var passNames: [String] { passes.map(\.name) + Lowering.passNames }

    public struct Result {
        public var ast: ModelFile
        public var model: ModelSpec
        /// The forward graph with the gradient of the loss added (before optimisation).
        public var gradientGraph: Graph
        /// After every pass, by pass name, in pipeline order.
        public var afterPass: [(name: String, graph: Graph)]
        public var program: CompiledProgram
        public var warnings: [String]

        /// The text `--dump-after PASS` prints: the graph after a graph pass, or the training step's kernel
        /// program after a lowering pass (at the model's batch size, two threads); nil for an unknown pass.
        public func dump(after pass: String) -> String? {
            if let entry = afterPass.first(where: { $0.name == pass }) {
                return IRPrinter.print(entry.graph, title: "after \(pass)")
            }
            guard Lowering.passNames.contains(pass) else { return nil }
            let outputs = [OutputName.loss, OutputName.reconstruction, OutputName.kl] + model.parameters.map { OutputName.gradient($0.name) }
            return Lowering.dump(program.graph, outputs: outputs, after: pass, batch: model.train.batch, threads: 2)
        }
    }

    public static func compile(path: String) throws -> Result {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
              let data = FileManager.default.contents(atPath: path) else {
            throw VAECError.io("cannot read model file '\(path)': \(isDirectory.boolValue ? "it is a directory" : "no such file")")
        }
        let bytes = [UInt8](data)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            // Point at the first byte that is not UTF-8, with the text before it as the source line.
            let offset = firstInvalidUTF8Offset(bytes)
            let prefix = SourceFile(path: path, text: String(decoding: bytes[..<offset], as: UTF8.self))
            throw CompileFailure(diagnostics: [Diagnostic("the file is not UTF-8 text (byte 0x\(String(bytes[offset], radix: 16)) at offset \(offset))",
                                                          at: SourceRange(prefix.bytes.count, prefix.bytes.count + 1))],
                                 source: SourceFile(path: path, text: String(decoding: bytes[..<offset], as: UTF8.self) + " "))
        }
        return try compile(source: SourceFile(path: path, text: text))
    }

    /// Offset of the first byte that does not start or continue a valid UTF-8 scalar.
    static func firstInvalidUTF8Offset(_ bytes: [UInt8]) -> Int {
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            let length = b < 0x80 ? 1 : b >> 5 == 0b110 ? 2 : b >> 4 == 0b1110 ? 3 : b >> 3 == 0b11110 ? 4 : 0
            guard length > 0, i + length <= bytes.count,
                  String(validating: bytes[i..<i + length], as: UTF8.self) != nil else { return i }
            i += length
        }
        return max(0, bytes.count - 1)
    }

    public static func compile(source: SourceFile) throws(CompileFailure) -> Result {
        let ast = try Parser.parse(source)
        let model = try Checker.check(ast, source: source)
        // Stabilise the forward graph, then continue it with the backward sweep.
        let replay = StabilizePass().run(model.graph)
        var builder = GraphBuilder(replaying: replay)
        let parameterIDs = model.parameters.map { p in
            replay.nodes.firstIndex { $0.op == .parameter(p.name) }!
        }
        let loss = replay.output(OutputName.loss)!
        let gradients = ReverseMode.gradients(of: loss, withRespectTo: parameterIDs, in: &builder)
        for (p, g) in zip(model.parameters, gradients) { builder.setOutput(OutputName.gradient(p.name), g) }
        let gradientGraph = builder.graph
        var graph = gradientGraph
        var afterPass: [(String, Graph)] = []
        for pass in passes {
            graph = pass.run(graph)
            afterPass.append((pass.name, graph))
        }
        let program = CompiledProgram(model: model, graph: graph)
        return Result(ast: ast, model: model, gradientGraph: gradientGraph, afterPass: afterPass,
                      program: program, warnings: WeightingReport.warnings(for: model))
    }
}

extension GraphBuilder {
    /// A builder that continues an existing graph (its nodes are hash-consed as if built here).
    init(replaying graph: Graph) {
        self.init()
        for node in graph.nodes {
            currentLine = node.line
            _ = add(node.op, node.operands, name: node.name, shape: node.op.kind == .leaf ? node.shape : nil)
        }
        for (name, value) in graph.outputs { setOutput(name, value) }
    }
}

/// Errors of the tool that are not about a model file's text: a sentence for the user.
public enum VAECError: Error, CustomStringConvertible {
    case io(String)
    case usage(String)
    case data(String)
    case training(String)

    public var description: String {
        switch self {
        case .io(let s), .usage(let s), .data(let s), .training(let s): return s
        }
    }
}
