import Foundation

/// The whole front and middle end: source → AST → checked IR → gradient IR → optimised IR.
public enum Compiler {
    /// The optimisation pipeline, in order; each pass can be dumped after (`--dump-after NAME`).
    public static let passes: [any Pass] = [StabilizePass(), SimplifyPass(), CSEPass(), DeadCodePass()]

    public struct Result {
        public var ast: ModelFile
        public var model: ModelSpec
        /// The forward graph with the gradient of the loss added (before optimisation).
        public var gradientGraph: Graph
        /// After every pass, by pass name, in pipeline order.
        public var afterPass: [(name: String, graph: Graph)]
        public var program: CompiledProgram
        public var warnings: [String]
    }

    public static func compile(path: String) throws -> Result {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw VAECError.io("cannot read model file '\(path)': \(error.localizedDescription)")
        }
        return try compile(source: SourceFile(path: path, text: text))
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
