/// The `plan` lowering pass: where every value lives in memory.
///
/// Requested outputs, constants and hypers are pinned (the caller reads outputs after a run and binds
/// their pointers once). Every other value a kernel writes gets an offset in one arena, chosen by
/// liveness: a value is live from the stage that writes it to the last stage that reads it (plus one
/// stage in the fused plan, see `MemoryPlan`), and two values share memory only if those intervals do
/// not meet. Kernels' scratch (the per-task partial column sums) is a value live during its own stage.
/// The arena is allocated once when the program is bound, so a step allocates nothing.
struct BufferPlan: Sendable {
    /// A value to place: its size in floats and the first and last time (stage or node index) it is live.
    struct Item: Sendable {
        var size: Int
        var first: Int
        var last: Int
    }

    /// Offsets (in floats) of the items, in their order; every offset is a multiple of 16 (64 bytes).
    var offsets: [Int]
    var size: Int

    /// Greedy by size: the largest values are placed first, each at the lowest offset that overlaps no
    /// value already placed and live at the same time. (Placing in order of time instead leaves holes a
    /// later large value does not fit in: 3.3 MB instead of 2.4 MB for the evaluator at batch 500.)
    init(_ items: [Item]) {
        let order = items.indices.sorted { (-items[$0].size, items[$0].first, $0) < (-items[$1].size, items[$1].first, $1) }
        var placed: [(offset: Int, end: Int, first: Int, last: Int)] = []
        var offsets = [Int](repeating: 0, count: items.count)
        var size = 0
        for i in order {
            let item = items[i]
            let length = Self.aligned(item.size)
            let overlapping = placed.filter { $0.first <= item.last && item.first <= $0.last }.sorted { $0.offset < $1.offset }
            var offset = 0
            for block in overlapping {
                if offset + length <= block.offset { break }
                offset = max(offset, block.end)
            }
            offsets[i] = offset
            placed.append((offset, offset + length, item.first, item.last))
            size = max(size, offset + length)
        }
        self.offsets = offsets
        self.size = size
    }

    static func aligned(_ count: Int) -> Int { (max(count, 1) + 15) / 16 * 16 }
}

/// Where the values of a kernel program live for one batch size and thread count.
struct MemoryPlan: Sendable {
    /// Offsets in the arena of planned values (by value id).
    var arena: [ValueID: Int] = [:]
    /// Offsets of each fused kernel's partial column sums (by kernel index).
    var scratch: [Int: Int] = [:]
    var arenaSize = 0
    /// Offsets in the pinned block (shared by the fused and the plain plan): outputs, constants, hypers.
    let pinned: [ValueID: Int]

    /// The pinned block: requested outputs (not bound by the caller), then the constants and hypers.
    static func pinned(_ graph: Graph, outputs: [ValueID], schedule: [ValueID], batch: Int) -> (offsets: [ValueID: Int], size: Int) {
        var offsets: [ValueID: Int] = [:]
        var size = 0
        for v in outputs + schedule where offsets[v] == nil {
            switch graph[v].op {
            case .input, .parameter, .noise: continue
            case .hyper, .constant: break
            default: if !outputs.contains(v) { continue }
            }
            offsets[v] = size
            size += BufferPlan.aligned(graph[v].shape.elementCount(batch: batch))
        }
        return (offsets, size)
    }

    /// The plan of the fused program.
    init(_ program: KernelProgram, staging: Staging, batch: Int, pinned: [ValueID: Int]) {
        let graph = program.graph
        let stageOf = staging.stageOfKernel
        self.pinned = pinned
        var lastRead: [ValueID: Int] = [:]
        for (k, kernel) in program.kernels.enumerated() {
            for v in kernel.reads { lastRead[v] = max(lastRead[v] ?? 0, stageOf[k]) }
        }
        var keys: [(value: ValueID?, kernel: Int?)] = []
        var items: [BufferPlan.Item] = []
        // A value is kept one stage past its last reader: memory read in one stage is not written in
        // the next. In the mnist step the products dμ·Wμ and dlogσ²·Wlogσ² wrote their results where
        // dh₂ had been, which both cores had just read; their stage took 30 µs instead of 21 (the
        // writes must take the lines from the other core first, presumably). With the gap the arena
        // grew 1.61 → 1.78 MiB and the stages' minima summed to ~10 µs less (3 interleaved pairs).
        for (k, kernel) in program.kernels.enumerated() {
            let s = stageOf[k]
            for v in kernel.results where pinned[v] == nil {
                keys.append((v, nil))
                items.append(.init(size: graph[v].shape.elementCount(batch: batch), first: s, last: max(s, lastRead[v] ?? s) + 1))
            }
            if case .fused(let f) = kernel, !f.columnSums.isEmpty {
                keys.append((nil, k))
                items.append(.init(size: Self.partialsSize(f, batch: batch), first: s, last: s))
            }
        }
        let plan = BufferPlan(items)
        for (key, offset) in zip(keys, plan.offsets) {
            if let v = key.value { arena[v] = offset } else if let k = key.kernel { scratch[k] = offset }
        }
        arenaSize = plan.size
    }

    /// The plan of the one-node-at-a-time interpreter: every scheduled value, live from its node to its
    /// last reader. `pinned` is shared with the fused plan so outputs land in the same buffers.
    init(plain graph: Graph, schedule: [ValueID], batch: Int, pinned: [ValueID: Int]) {
        self.pinned = pinned
        var lastRead: [ValueID: Int] = [:]
        for (i, v) in schedule.enumerated() { for o in graph[v].operands { lastRead[o] = i } }
        var values: [ValueID] = []
        var items: [BufferPlan.Item] = []
        for (i, v) in schedule.enumerated() where pinned[v] == nil && graph[v].op.kind != .leaf {
            values.append(v)
            items.append(.init(size: graph[v].shape.elementCount(batch: batch), first: i, last: max(i, lastRead[v] ?? i)))
        }
        let plan = BufferPlan(items)
        for (v, offset) in zip(values, plan.offsets) { arena[v] = offset }
        arenaSize = plan.size
    }

    /// Floats of partial column sums a fused kernel needs: one row per task chunk and sum.
    static func partialsSize(_ f: FusedKernel, batch: Int) -> Int {
        let rows = f.domain.batched ? batch : 1
        let chunks = FusedKernel.chunking(rows: rows, columns: f.domain.featureCount).count
        return chunks * f.domain.featureCount * f.columnSums.count
    }
}
