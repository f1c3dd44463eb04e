/// The `fuse` lowering pass: groups the elementwise ops of the optimised IR into fused kernels and
/// orders them with the matrix products.
///
/// Clustering is greedy along data edges, in node order: an elementwise node joins the kernel of each
/// operand computed over the same domain (shape), and a sum joins the kernel of its operand, unless the
/// merge would make the kernels' dependency graph cyclic (a path from one kernel to the other through a
/// third, e.g. through a GEMM) or a kernel would read a sum it is still accumulating. Kernels over the
/// same domain that are not connected by an edge end up together when a later node reads both
/// (z = μ + σ·ε joins the μ and the log σ² kernels); remaining ones are merged pairwise under the same
/// two rules. The kernels are then ordered topologically, following the source order where they can.
enum Fusion {
    static func lower(_ graph: Graph, outputs requested: [ValueID]) -> KernelProgram {
        let live = DeadCodePass.live(graph, outputs: requested)
        let ids = (0..<graph.nodes.count).filter { live[$0] }

        func isLeaf(_ v: ValueID) -> Bool { graph[v].op.kind == .leaf }
        func isReduction(_ v: ValueID) -> Bool { graph[v].op == .sumFeatures || graph[v].op == .sumBatch }
        /// Products and standalone ops: each a kernel of its own.
        func runsAlone(_ v: ValueID) -> Bool { graph[v].op.kind == .matrix || graph[v].op.kind == .standalone }
        /// The domain a fusible node is computed over (nil for leaves and products).
        func domain(_ v: ValueID) -> Shape? {
            let node = graph[v]
            switch node.op.kind {
            case .leaf, .matrix, .standalone: return nil
            case .unary, .binary: return node.shape
            case .reduction: return isReduction(v) ? graph[node.operands[0]].shape : node.shape
            }
        }

        // Consumers of each live value.
        var consumers = [[ValueID]](repeating: [], count: graph.nodes.count)
        for v in ids { for o in Set(graph[v].operands) { consumers[o].append(v) } }

        // Clusters as a union-find over node ids, with cluster-level edges kept on the roots.
        var parent = Array(0..<graph.nodes.count)
        func find(_ v: Int) -> Int {
            var r = v
            while parent[r] != r { r = parent[r] }
            var x = v
            while parent[x] != r { let next = parent[x]; parent[x] = r; x = next }
            return r
        }
        var successors = [Set<Int>](repeating: [], count: graph.nodes.count)
        var predecessors = [Set<Int>](repeating: [], count: graph.nodes.count)
        var members = [[ValueID]](repeating: [], count: graph.nodes.count)
        for v in ids where !isLeaf(v) {
            members[v] = [v]
            for o in graph[v].operands where !isLeaf(o) {
                successors[o].insert(v); predecessors[v].insert(o)
            }
        }

        /// Whether `target` is reachable from `start`'s successors other than `target` itself.
        func reachesThroughOthers(_ start: Int, _ target: Int) -> Bool {
            var stack = Array(successors[start].filter { $0 != target })
            var seen = Set(stack)
            while let c = stack.popLast() {
                for s in successors[c] {
                    if s == target { return true }
                    if seen.insert(s).inserted { stack.append(s) }
                }
            }
            return false
        }

        func tryMerge(_ x: Int, _ y: Int) {
            let a = find(x), b = find(y)
            guard a != b else { return }
            // A kernel may not read a sum it computes itself (the sum is complete only at its end).
            let union = members[a] + members[b]
            let inside = Set(union)
            for v in union {
                for o in graph[v].operands where isReduction(o) && inside.contains(o) { return }
            }
            if reachesThroughOthers(a, b) || reachesThroughOthers(b, a) { return }
            parent[b] = a
            members[a] = union.sorted()
            members[b] = []
            for s in successors[b] { predecessors[s].remove(b); if s != a { predecessors[s].insert(a); successors[a].insert(s) } }
            for p in predecessors[b] { successors[p].remove(b); if p != a { successors[p].insert(a); predecessors[a].insert(p) } }
            successors[a].remove(b); predecessors[a].remove(b)
            successors[b] = []; predecessors[b] = []
        }

        /// A mask (step or sign: the slope of relu or abs) of a value that a product or standalone kernel
        /// reads, so that the value is stored whatever the clustering: the mask joins its users' kernel,
        /// not its operand's, and is recomputed there from the stored value rather than stored beside it.
        /// For the mnist step: the forward kernels after x·W₁ᵀ and z·W₃ᵀ stop storing their ReLU masks
        /// ([B,400] each), and the backward kernels that applied them read the activations instead.
        func isRecomputedMask(_ v: ValueID) -> Bool {
            guard graph[v].op == .positiveStep || graph[v].op == .sign, let o = graph[v].operands.first, !isLeaf(o) else { return false }
            return consumers[o].contains(where: runsAlone)
        }

        var masks: [ValueID] = []
        for v in ids {
            guard let d = domain(v) else { continue }
            if isRecomputedMask(v) { masks.append(v); continue }
            for o in graph[v].operands where !isLeaf(o) && !runsAlone(o) && !isReduction(o) {
                if domain(o) == d { tryMerge(o, v) }
            }
        }
        // A mask no user took (its users are products, or over another domain) goes with its operand.
        for v in masks where members[find(v)].count == 1 {
            let o = graph[v].operands[0]
            if !runsAlone(o) && !isReduction(o) && domain(o) == domain(v) { tryMerge(o, v) }
        }

        // Kernels over the same domain with no path between them (e.g. the per-example sums that end
        // the likelihood and the KL) can run as one: fewer kernel starts, one pass over their inputs.
        var byDomain: [Shape: [Int]] = [:]
        for v in ids where !isLeaf(v) && !runsAlone(v) && find(v) == v { byDomain[domain(v)!, default: []].append(v) }
        for (_, clusters) in byDomain.sorted(by: { $0.value[0] < $1.value[0] }) {
            for (i, a) in clusters.enumerated() { for b in clusters[(i + 1)...] { tryMerge(a, b) } }
        }

        // Order the kernels: Kahn's algorithm, taking the ready kernel with the smallest first node so
        // the program follows the source order where it can.
        let roots = ids.filter { !isLeaf($0) && find($0) == $0 }
        var pending = [Int: Int]()
        for r in roots { pending[r] = predecessors[r].count }
        var ready = roots.filter { pending[$0] == 0 }
        var kernels: [Kernel] = []
        let outputSet = Set(requested)
        while !ready.isEmpty {
            let next = ready.min { members[$0][0] < members[$1][0] }!
            ready.removeAll { $0 == next }
            let cluster = members[next]
            if cluster.count == 1, runsAlone(cluster[0]) {
                let node = graph[cluster[0]]
                if node.op.kind == .standalone {
                    kernels.append(.standalone(StandaloneKernel(node: cluster[0], op: node.op, operands: node.operands)))
                } else {
                    kernels.append(.matrix(MatrixKernel(node: cluster[0], op: node.op, a: node.operands[0], b: node.operands[1])))
                }
            } else {
                let inside = Set(cluster)
                let stored = cluster.filter { v in
                    !isReduction(v) && (outputSet.contains(v) || consumers[v].contains { !inside.contains($0) })
                }
                kernels.append(.fused(RegisterProgram.compile(graph, nodes: cluster, domain: domain(cluster[0])!,
                                                              stored: Set(stored))))
            }
            for s in successors[next] {
                pending[s]! -= 1
                if pending[s] == 0 { ready.append(s) }
            }
        }
        precondition(kernels.count == roots.count, "internal compiler error: the fused kernels form a cycle")
        return KernelProgram(graph: graph, outputs: requested, leaves: ids.filter(isLeaf), kernels: kernels)
    }
}
