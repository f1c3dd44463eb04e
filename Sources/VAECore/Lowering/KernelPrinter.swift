import Foundation

/// Text form of the lowering stages, for `vaec compile --dump-after fuse|stage|plan`.
public enum Lowering {
    /// The lowering passes after the graph passes, in order.
    public static let passNames = ["fuse", "stage", "plan"]

    /// The IR nodes of each fused elementwise kernel of the training step (with at least two nodes),
    /// for drawing them as clusters in the DOT picture.
    public static func fusedClusters(_ graph: Graph, outputs: [String]) -> [[ValueID]] {
        let roots = outputs.compactMap { graph.output($0) }
        return Fusion.lower(graph, outputs: roots).kernels.compactMap { kernel in
            if case .fused(let f) = kernel, f.nodes.count > 1 { return f.nodes }
            return nil
        }
    }

    /// The kernel program of a graph's outputs after a lowering pass, at a batch size and thread count.
    public static func dump(_ graph: Graph, outputs: [String], after pass: String, batch: Int, threads: Int) -> String {
        let roots = outputs.compactMap { graph.output($0) }
        let program = Fusion.lower(graph, outputs: roots)
        var text = "// kernel program after \(pass): \(program.kernels.count) kernels for \(graph.nodes.count) IR nodes\n"
        switch pass {
        case "fuse":
            for (i, kernel) in program.kernels.enumerated() { text += describe(kernel, index: i, program) }
        case "stage":
            let staging = Staging(program, batch: batch, threads: threads)
            text += "// batch \(batch), \(threads) thread\(threads == 1 ? "" : "s"): \(staging.stages.count) stages\n"
            for (s, stage) in staging.stages.enumerated() {
                let names = stage.kernels.map { k in
                    "k\(k) " + summary(program.kernels[k], program.graph, batch: batch)
                        + (stage.epilogue(of: k).map { " + epilogue k\($0) " + summary(program.kernels[$0], program.graph, batch: batch) } ?? "")
                        + (stage.chunked.contains(k) ? " in row chunks" : "")
                }
                text += "stage \(s)\(stage.split ? " (split)" : ""): " + names.joined(separator: " ‖ ") + "\n"
            }
        default:
            let staging = Staging(program, batch: batch, threads: threads)
            let schedule = (0..<graph.nodes.count).filter { DeadCodePass.live(graph, outputs: roots)[$0] }
            let pinned = MemoryPlan.pinned(graph, outputs: roots, schedule: schedule, batch: batch)
            let plan = MemoryPlan(program, staging: staging, batch: batch, pinned: pinned.offsets)
            let naive = schedule.filter { graph[$0].op.kind != .leaf }
                .reduce(0) { $0 + BufferPlan.aligned(graph[$1].shape.elementCount(batch: batch)) }
            text += "// batch \(batch): arena \(kib(plan.arenaSize)) for \(plan.arena.count) values and \(plan.scratch.count) scratch areas"
            text += ", pinned \(kib(pinned.size)) (outputs, constants, hypers); one buffer per node would take \(kib(naive))\n"
            let stageOf = staging.stageOfKernel
            for (k, kernel) in program.kernels.enumerated() {
                for v in kernel.results {
                    let size = graph[v].shape.elementCount(batch: batch)
                    if let offset = plan.arena[v] {
                        text += "%\(v) \(graph[v].shape): arena +\(offset) (\(size) floats), written in stage \(stageOf[k])\n"
                    } else if let offset = pinned.offsets[v] {
                        text += "%\(v) \(graph[v].shape): pinned +\(offset) (\(size) floats), output\n"
                    }
                }
                if let offset = plan.scratch[k] {
                    text += "k\(k) partial sums: arena +\(offset), stage \(stageOf[k])\n"
                }
            }
        }
        return text
    }

    static func kib(_ floats: Int) -> String {
        let bytes = Double(floats * 4)
        return bytes >= 1_048_576 ? String(format: "%.2f MiB", bytes / 1_048_576) : String(format: "%.1f KiB", bytes / 1024)
    }

    static func summary(_ kernel: Kernel, _ graph: Graph, batch: Int) -> String {
        switch kernel {
        case .matrix(let m):
            let d = m.dimensions(graph, batch: batch)
            return "\(m.op.mnemonic) %\(m.node) [\(d.m)×\(d.n)×\(d.k)]"
        case .standalone(let s):
            return "\(s.op.mnemonic) %\(s.node) \(graph[s.node].shape)"
        case .fused(let f):
            return "fused \(f.domain) (\(f.nodes.count) ops)"
        }
    }

    static func describe(_ kernel: Kernel, index: Int, _ program: KernelProgram) -> String {
        let graph = program.graph
        switch kernel {
        case .matrix(let m):
            return "k\(index) = \(m.op.mnemonic) %\(m.a), %\(m.b) → %\(m.node) \(graph[m.node].shape)\n"
        case .standalone(let s):
            return "k\(index) = \(IRPrinter.line(s.node, graph[s.node]).split(separator: "#")[0].trimmingCharacters(in: .whitespaces))\n"
        case .fused(let f):
            var text = "k\(index) = fused over \(f.domain), \(f.registers) registers: nodes "
                + f.nodes.map { "%\($0)" }.joined(separator: " ") + "\n"
            for instruction in f.code {
                text += "    "
                switch instruction {
                case .load(let r, let i):
                    text += "r\(r) = load %\(f.inputs[i].value)\(f.inputs[i].mode == .full ? "" : " (\(f.inputs[i].mode))")"
                case .unary(let op, let d, let s): text += "r\(d) = \(op.mnemonic) r\(s)"
                case .binary(let op, let d, let a, let b): text += "r\(d) = \(op.mnemonic) r\(a), r\(b)"
                case .copy(let d, let s): text += "r\(d) = r\(s)"
                case .softplusSigmoid(let a, let b, let s): text += "r\(a), r\(b) = softplus, sigmoid r\(s)"
                case .store(let r, let slot): text += "store r\(r) → %\(f.stores[slot])"
                case .rowSum(let r, let slot): text += "sum_features r\(r) → %\(f.rowSums[slot])"
                case .columnSum(let r, let slot): text += "sum_batch r\(r) → %\(f.columnSums[slot])"
                }
                text += "\n"
            }
            return text
        }
    }
}
