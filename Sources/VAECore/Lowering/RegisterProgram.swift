/// Compiles one cluster of elementwise nodes into a fused kernel's register program.
///
/// Each node gets a register when it is computed; a register is free again after the last node of the
/// kernel that reads it, so a long chain needs only as many registers as values live at once (and a
/// result may overwrite its operand: every instruction works lane by lane). Values from memory are
/// loaded at their first use; values needed outside the kernel are stored right after they are computed.
enum RegisterProgram {
    static func compile(_ graph: Graph, nodes: [ValueID], domain: Shape, stored: Set<ValueID>) -> FusedKernel {
        let inside = Set(nodes)
        var kernel = FusedKernel(domain: domain, nodes: nodes, inputs: [], code: [], registers: 0,
                                 stores: [], rowSums: [], columnSums: [])

        // Where each value is read for the last time (index into `nodes`), inside or loaded.
        var lastUse: [ValueID: Int] = [:]
        for (i, v) in nodes.enumerated() { for o in graph[v].operands { lastUse[o] = i } }

        var free: [Int] = []
        var registerOf: [ValueID: Int] = [:]
        var inputIndex: [ValueID: Int] = [:]
        func allocate() -> Int {
            if let r = free.popLast() { return r }
            kernel.registers += 1
            return kernel.registers - 1
        }
        /// The register holding an operand, loading it from memory first if it comes from outside.
        func operand(_ o: ValueID) -> Int {
            if let r = registerOf[o] { return r }
            precondition(!inside.contains(o), "internal compiler error: %\(o) read before it is computed")
            let input: Int
            if let i = inputIndex[o] { input = i } else {
                input = kernel.inputs.count
                inputIndex[o] = input
                kernel.inputs.append((o, Broadcast(graph[o].shape, to: domain)))
            }
            let r = allocate()
            kernel.code.append(.load(r, input: input))
            registerOf[o] = r
            return r
        }

        // softplus(x) and sigmoid(x) of the same x (the Bernoulli likelihood and its gradient) share
        // their exp: both are computed where the first of them is.
        var partner: [ValueID: ValueID] = [:]
        for v in nodes where graph[v].op == .softplus {
            if let w = nodes.first(where: { graph[$0].op == .sigmoid && graph[$0].operands == graph[v].operands }) {
                partner[v] = w; partner[w] = v
            }
        }

        for (i, v) in nodes.enumerated() {
            let node = graph[v]
            let sources = node.operands.map(operand)
            // Registers of operands read for the last time here: free before the result is allocated, so
            // the result may take one of them.
            var dying: [Int] = []
            for o in Set(node.operands) where lastUse[o] == i {
                if let r = registerOf.removeValue(forKey: o) { dying.append(r) }
            }
            switch node.op {
            case .sumFeatures, .sumBatch:
                free.append(contentsOf: dying)
                // sum_batch reduces the rows when the domain has them; over an unbatched domain (one row)
                // both sums reduce the features.
                if node.op == .sumBatch && domain.batched {
                    kernel.code.append(.columnSum(sources[0], slot: kernel.columnSums.count))
                    kernel.columnSums.append(v)
                } else {
                    kernel.code.append(.rowSum(sources[0], slot: kernel.rowSums.count))
                    kernel.rowSums.append(v)
                }
                continue
            case .broadcast:
                // The broadcasting itself happens in the load: the value is its operand's register, taken
                // over when the operand dies here and copied otherwise.
                if let r = dying.first {
                    registerOf[v] = r
                } else {
                    let r = allocate()
                    kernel.code.append(.copy(r, sources[0]))
                    registerOf[v] = r
                }
            case .softplus where partner[v] != nil, .sigmoid where partner[v] != nil:
                free.append(contentsOf: dying)
                if registerOf[v] == nil {   // the first of the pair: compute both
                    let w = partner[v]!
                    registerOf[v] = allocate()
                    registerOf[w] = allocate()
                    let (s, g) = node.op == .softplus ? (registerOf[v]!, registerOf[w]!) : (registerOf[w]!, registerOf[v]!)
                    kernel.code.append(.softplusSigmoid(s, g, sources[0]))
                }
            default:
                free.append(contentsOf: dying)
                let r = allocate()
                if node.op.kind == .unary {
                    kernel.code.append(.unary(node.op, r, sources[0]))
                } else {
                    kernel.code.append(.binary(node.op, r, sources[0], sources[1]))
                }
                registerOf[v] = r
            }
            if stored.contains(v) {
                kernel.code.append(.store(registerOf[v]!, slot: kernel.stores.count))
                kernel.stores.append(v)
            }
            if lastUse[v] == nil, let r = registerOf.removeValue(forKey: v) { free.append(r) }
        }
        return kernel
    }
}
