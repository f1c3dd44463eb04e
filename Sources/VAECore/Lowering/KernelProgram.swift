// The kernel program: what the optimised IR is lowered into before it runs.
//
//   optimised IR ──fuse──▶ kernels (GEMMs and fused elementwise register programs), in dependency order
//                ──stage──▶ stages for the threads (independent kernels side by side, big ones split)
//                ──plan──▶ one arena, every intermediate at an offset chosen by liveness
//
// A fused kernel runs a small register program over blocks of its iteration domain ([rows × columns]
// of its values: rows = the batch for batched values): each block of up to `FusedKernel.blockSize`
// elements is loaded into registers (contiguous float arrays in L1), every op of the chain runs as
// one vector loop over the block, and only the values needed elsewhere are stored. So a chain of
// elementwise ops is one pass over memory, and the sums that end a chain (sum_features: per row,
// sum_batch: per column) are accumulated from the registers instead of re-reading a stored value.

/// One instruction of a fused kernel's register program. Registers hold one block of the domain.
enum Instruction: Equatable, Sendable {
    /// register ← input (read with the input's broadcast: full, per row, per column or scalar)
    case load(Int, input: Int)
    /// destination ← op(source)
    case unary(Op, Int, Int)
    /// destination ← op(a, b)
    case binary(Op, Int, Int, Int)
    /// destination ← source
    case copy(Int, Int)
    /// (softplus, sigmoid) ← both of source with one exp (`VectorMath.softplusAndSigmoid`)
    case softplusSigmoid(Int, Int, Int)
    /// stores[slot] ← register (the value is needed outside the kernel)
    case store(Int, slot: Int)
    /// rowSums[slot][row] (+)= Σ over the block's columns of the register (sum_features)
    case rowSum(Int, slot: Int)
    /// columnSums[slot][column] (+)= Σ over the block's rows of the register (sum_batch)
    case columnSum(Int, slot: Int)
}

/// A chain of elementwise ops over one domain, with the sums that end it.
struct FusedKernel: Sendable {
    /// Elements per register: one block of the domain (a row segment, or whole rows when rows are short).
    static let blockSize = 512

    /// The shape every value of the kernel has (sums reduce this shape).
    var domain: Shape
    /// The IR nodes it computes, in order.
    var nodes: [ValueID]
    /// Values read from memory, with how each maps onto the domain.
    var inputs: [(value: ValueID, mode: Broadcast)]
    var code: [Instruction]
    var registers: Int
    /// Values written to memory: used by another kernel, or requested outputs.
    var stores: [ValueID]
    /// sum_features nodes (one value per row) and sum_batch nodes (one value per column).
    var rowSums: [ValueID]
    var columnSums: [ValueID]

    var results: [ValueID] { stores + rowSums + columnSums }

    /// Rows per block: 1 when a row has at least half a block of columns, else as many whole rows as fit.
    static func blockRows(columns: Int) -> Int {
        columns * 2 >= blockSize ? 1 : max(1, blockSize / columns)
    }

    /// How the rows are cut into tasks: rows per chunk (whole blocks) and the chunk count. About 16K
    /// elements a chunk, in an even number of near-equal chunks when there is more than one, so that two
    /// threads get the same work: [128, 784] in 20-row chunks was six of 20 rows and one of 8, and the
    /// thread that took the short one waited ~6 µs for the other (the likelihood kernel, 16 µs a chunk).
    /// It depends only on the shape, never on the thread count, and every column sum is accumulated per
    /// chunk then added in chunk order, so the result is the same bits for any number of threads.
    static func chunking(rows: Int, columns: Int) -> (rows: Int, count: Int) {
        let h = blockRows(columns: columns)
        let most = h * max(1, 16_384 / (h * columns))
        var count = max(1, (rows + most - 1) / most)
        if count > 1 && count % 2 == 1 { count += 1 }
        let perChunk = ((rows + count - 1) / count + h - 1) / h * h
        return (perChunk, (rows + perChunk - 1) / perChunk)
    }
}

/// A product of the IR (dense, dense_t, outer_sum) run by the GEMM.
struct MatrixKernel: Sendable {
    var node: ValueID
    var op: Op
    var a: ValueID
    var b: ValueID

    /// m, n, k and the transposes of C[m×n] = op(A)·op(B) for this product at a batch size.
    func dimensions(_ graph: Graph, batch: Int) -> (m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool) {
        switch op {
        case .dense:            // x[B,k] · W[n,k]ᵀ
            let w = graph[b].shape.dims
            return (batch, w[0], w[1], false, true)
        case .denseTransposed:  // dy[B,n] · W[n,k]
            let w = graph[b].shape.dims
            return (batch, w[1], w[0], false, false)
        default:                // a[B,n]ᵀ · x[B,k]
            return (graph[a].shape.featureCount, graph[b].shape.featureCount, batch, true, false)
        }
    }

    func flops(_ graph: Graph, batch: Int) -> Int {
        let d = dimensions(graph, batch: batch)
        return 2 * d.m * d.n * d.k
    }
}

/// An op that runs as a kernel of its own (`Op.Kind.standalone`): a convolution, a layout change or
/// the per-channel sum.
struct StandaloneKernel: Sendable {
    var node: ValueID
    var op: Op
    var operands: [ValueID]

    /// 2·multiply–adds for a convolution; one per element written otherwise.
    func flops(_ graph: Graph, batch: Int) -> Int {
        switch op {
        case .conv2d(let g), .conv2dTransposed(let g), .conv2dFilter(let g):
            let w = op == .conv2dFilter(g) ? graph[node].shape.dims : graph[operands[1]].shape.dims
            return 2 * batch * g.multiplyAdds(inputChannels: w[1], outputChannels: w[0])
        default:
            return graph[operands[0]].shape.elementCount(batch: batch)
        }
    }
}

enum Kernel: Sendable {
    case matrix(MatrixKernel)
    case fused(FusedKernel)
    case standalone(StandaloneKernel)

    /// Values the kernel writes to memory.
    var results: [ValueID] {
        switch self {
        case .matrix(let m): return [m.node]
        case .fused(let f): return f.results
        case .standalone(let s): return [s.node]
        }
    }

    /// Values the kernel reads from memory.
    var reads: [ValueID] {
        switch self {
        case .matrix(let m): return [m.a, m.b]
        case .fused(let f): return f.inputs.map(\.value)
        case .standalone(let s): return s.operands
        }
    }

    /// Floating-point operations at a batch size: 2·m·n·k for a product, one per element and op for a
    /// fused kernel (loads and stores are not counted; a sum counts one add per element).
    func flops(_ graph: Graph, batch: Int) -> Int {
        switch self {
        case .matrix(let m): return m.flops(graph, batch: batch)
        case .standalone(let s): return s.flops(graph, batch: batch)
        case .fused(let f):
            let ops = f.code.reduce(0) { n, ins in
                switch ins {
                case .unary, .binary, .rowSum, .columnSum: return n + 1
                case .softplusSigmoid: return n + 2
                case .load, .store, .copy: return n
                }
            }
            return ops * f.domain.elementCount(batch: batch)
        }
    }
}

/// The lowered program for a set of requested outputs, independent of the batch size.
struct KernelProgram: Sendable {
    let graph: Graph
    /// The requested outputs.
    var outputs: [ValueID]
    /// Leaves bound by the caller (inputs, parameters, noise), constants and hypers: in memory before
    /// any kernel runs.
    var leaves: [ValueID]
    var kernels: [Kernel]

    /// Kernel index producing each value (nil for leaves and unscheduled nodes).
    func producers() -> [Int?] {
        var producer = [Int?](repeating: nil, count: graph.nodes.count)
        for (i, k) in kernels.enumerated() { for v in k.results { producer[v] = i } }
        return producer
    }

    func flops(batch: Int) -> Int { kernels.reduce(0) { $0 + $1.flops(graph, batch: batch) } }
}
