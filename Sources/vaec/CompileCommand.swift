import Foundation
import VAECore

enum CompileCommand {
    static func run(_ words: ArraySlice<String>) throws {
        if words.contains("--help") { print(Help.commands["compile"]!); return }
        let args = try Arguments(words, valued: ["-o", "--dump", "--dump-after", "--dot", "--depth"], flags: [])
        guard args.positional.count == 1, let path = args.positional.first else {
            throw UsageError("compile takes one model file: vaec compile MODEL.vae")
        }
        let result = try Compiler.compile(path: path)
        if let dot = args.options["--dot"] {
            // Fused elementwise kernels are drawn as clusters: each box is one pass over memory.
            let outputs = [OutputName.loss, OutputName.reconstruction, OutputName.kl] + result.model.parameters.map { OutputName.gradient($0.name) }
            let writer = DotWriter(title: "\(result.model.name), optimised", depth: try args.integer("--depth", in: 0...1_000_000),
                                   clusters: Lowering.fusedClusters(result.program.graph, outputs: outputs))
            try AtomicFile.write(Array(writer.write(result.program.graph).utf8), to: dot)
            if args.options["--dump"] == nil && args.options["--dump-after"] == nil { print("wrote the optimised graph as Graphviz DOT to \(dot)") }
        } else if args.options["--depth"] != nil {
            throw UsageError("--depth limits the picture of --dot FILE; give --dot too")
        }
        if let stage = args.options["--dump"] {
            switch stage {
            case "ast": print(ASTPrinter.print(result.ast))
            case "ir": print(IRPrinter.print(result.model.graph, title: "checked forward graph of \(path)"), terminator: "")
            case "grad": print(IRPrinter.print(result.gradientGraph, title: "with the gradient, before optimisation"), terminator: "")
            case "opt": print(IRPrinter.print(result.program.graph, title: "optimised"), terminator: "")
            case "kernels": print(result.dump(after: "fuse")!, terminator: "")   // the fused kernels and their register programs
            default: throw UsageError("--dump takes ast, ir, grad, opt or kernels, not '\(stage)'")
            }
            return
        }
        if let passName = args.options["--dump-after"] {
            guard let text = result.dump(after: passName) else {
                throw UsageError("no pass '\(passName)'; passes: \(Compiler.passNames.joined(separator: ", "))")
            }
            print(text, terminator: "")
            return
        }
        let output = args.options["-o"] ?? (path.hasSuffix(".vae") ? String(path.dropLast(4)) : path) + ".vaek"
        try result.program.write(to: output)
        let graph = result.program.graph
        print("compiled \(path) → \(output): \(result.model.parameters.count) parameter tensors (\(result.model.parameters.reduce(0) { $0 + $1.count }) values), \(graph.nodes.count) ops")
        print("objective: \(WeightingReport.summary(result.model))")
        for warning in result.warnings { print("warning: \(warning)") }
    }
}
