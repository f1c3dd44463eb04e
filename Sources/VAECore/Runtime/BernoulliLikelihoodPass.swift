/// The Bernoulli likelihood kernel (the mnist model's `k9` over [B, 784], and every sample's decoder
/// of the same form) run in one vector loop per block: a superinstruction for the whole program.
///
/// The kernel computes, per element, with l = a + b (the bias row and the product's output):
///   −log p = softplus(l) − x·l, summed per row (the per-example loss, not stored), and
///   dl = x·(−g) + g·σ(l), stored and summed per column (the bias gradient),
/// with softplus and σ from one exp (`VectorMath.softplusAndSigmoid`) and g the per-example (or
/// scalar) gradient seed. The interpreter with its superinstructions and pairs makes 5 passes over a
/// block for it; each pass loads and stores every vector it touches, about as costly as an add. Here
/// every vector is loaded once (a, b, x), computed in registers and stored once (dl, its column sum).
/// Measured on the mnist step (`vaec bench --stages`, medians of interleaved runs' stage minima):
/// 146.7 → 100.9 µs on one thread (17 pairs; ~60 cycles per SIMD16 vector, most of it the exp and
/// log1p polynomials), 92.9 → 55.9 µs as the split stage on two threads (11 pairs).
///
/// Same bits as the interpreter: the chain is elementwise, so each lane gets the same ops on the same
/// operands in the same order (the same `VectorFunctions` and `VectorMath` functions); the row sum is
/// accumulated as `FusedKernelRunner.binarySummingRow` does (a vector accumulator over the block's
/// vectors in order, then `VectorMath.sum`, added to the row's total segment by segment) and the column
/// sums into the task's partials as `binarySummingColumns` does (the task's first row copies, the others
/// add). `BernoulliLikelihoodPassTests` checks it against the interpreter bit for bit. The one thing
/// the source fixes for neither path is which NaN an add or a multiply of two NaNs gives (the first
/// operand's of the machine instruction, and the compiler commutes those operands freely): there a
/// result can be −NaN in one path and +NaN in the other.
///
/// Recognised from the program's dataflow, not its text: every register is evaluated to the term it
/// holds (`Term`), and the kernel's results must be exactly the terms above for some inputs a, b, x, g
/// (any registers, any order of instructions). The loss's row sum, the gradient's store and its column
/// sum may each be absent (at least one must be there). a, b and x must be read in place (full or per
/// row, not overlapping a store), g per example or a scalar. Used only for one-row direct blocks (every
/// block of a [B, 784] kernel); other blocks run the interpreter.
struct BernoulliLikelihoodPass {
    typealias V = SIMD16<Float>

    /// What a register holds, as a function of the kernel's inputs.
    indirect enum Term: Equatable {
        case input(Int)
        case unary(ElementwiseFunction, Term)
        case binary(ElementwiseFunction, Term, Term)
        /// The two results of a `.softplusSigmoid` (not the unary ops of those names: other functions).
        case softplus(Term)
        case sigmoid(Term)
    }

    /// An input read along the block: its base, and floats per row (0 for a per-row input).
    struct Operand {
        var base: UnsafePointer<Float>
        var rowStride: Int
        @inline(__always) func at(row r: Int, column c0: Int) -> UnsafePointer<Float> { base + r * rowStride + c0 }
    }

    let left: Operand, right: Operand, data: Operand
    /// The gradient seed: one value per row, or one for all (stride 0); nil when the gradient is unused.
    let seed: UnsafePointer<Float>?, seedStride: Int
    let rowSums: UnsafeMutablePointer<Float>?
    let store: UnsafeMutablePointer<Float>?
    /// The column sum's partials (chunks × columns), nil when the kernel has none.
    let partials: UnsafeMutablePointer<Float>?
    let columns: Int

    /// The pass for `kernel` bound to this memory, or nil when its program is not of this form.
    /// `partials` is the runner's scratch; `inPlace[i]` whether input i is read in place in a direct block.
    init?(_ kernel: FusedKernel, inPlace: [Bool], inputs: [UnsafePointer<Float>], stores: [UnsafeMutablePointer<Float>],
          rowSums: [UnsafeMutablePointer<Float>], partials: UnsafeMutablePointer<Float>?) {
        guard let sinks = Self.results(kernel.code), kernel.rowSums.count <= 1, kernel.stores.count <= 1,
              kernel.columnSums.count <= 1,
              let (a, b, x, g) = Self.inputs(of: sinks)
        else { return nil }
        let (loss, gradient) = Self.terms(a, b, x, g)
        guard sinks.rowSums.allSatisfy({ $0 == loss }), sinks.stores.allSatisfy({ $0 == gradient }),
              sinks.columnSums.allSatisfy({ $0 == gradient })
        else { return nil }
        func operand(_ i: Int) -> Operand? {
            let mode = kernel.inputs[i].mode
            guard inPlace[i], mode == .full || mode == .row else { return nil }
            return Operand(base: inputs[i], rowStride: mode == .full ? kernel.domain.featureCount : 0)
        }
        guard let left = operand(a), let right = operand(b), let data = operand(x) else { return nil }
        let usesSeed = !(sinks.stores.isEmpty && sinks.columnSums.isEmpty)
        let seedMode = kernel.inputs[g].mode
        guard !usesSeed || seedMode == .column || seedMode == .scalar else { return nil }
        self.left = left; self.right = right; self.data = data
        seed = usesSeed ? inputs[g] : nil
        seedStride = seedMode == .column ? 1 : 0
        self.rowSums = rowSums.first
        store = stores.first
        self.partials = kernel.columnSums.isEmpty ? nil : partials
        columns = kernel.domain.featureCount
    }

    /// The terms a kernel's results hold: its stores', row sums' and column sums' registers, by slot.
    /// Nil when a register is read before it is written.
    static func results(_ code: [Instruction]) -> (stores: [Term], rowSums: [Term], columnSums: [Term])? {
        var registers: [Int: Term] = [:]
        var stores: [Int: Term] = [:], rowSums: [Int: Term] = [:], columnSums: [Int: Term] = [:]
        for instruction in code {
            switch instruction {
            case .load(let d, let input): registers[d] = .input(input)
            case .unary(let op, let d, let s):
                guard let t = registers[s] else { return nil }
                registers[d] = .unary(ElementwiseFunction(op), t)
            case .binary(let op, let d, let x, let y):
                guard let t = registers[x], let u = registers[y] else { return nil }
                registers[d] = .binary(ElementwiseFunction(op), t, u)
            case .copy(let d, let s):
                guard let t = registers[s] else { return nil }
                registers[d] = t
            case .softplusSigmoid(let s, let g, let x):
                guard let t = registers[x] else { return nil }
                registers[s] = .softplus(t); registers[g] = .sigmoid(t)
            case .store(let s, let slot):
                guard let t = registers[s] else { return nil }
                stores[slot] = t
            case .rowSum(let s, let slot):
                guard let t = registers[s] else { return nil }
                rowSums[slot] = t
            case .columnSum(let s, let slot):
                guard let t = registers[s] else { return nil }
                columnSums[slot] = t
            }
        }
        func bySlot(_ d: [Int: Term]) -> [Term] { d.keys.sorted().map { d[$0]! } }
        return (bySlot(stores), bySlot(rowSums), bySlot(columnSums))
    }

    /// The loss and its gradient as terms of the inputs a, b (the logits are a + b), x and g.
    static func terms(_ a: Int, _ b: Int, _ x: Int, _ g: Int) -> (loss: Term, gradient: Term) {
        let logits = Term.binary(.add, .input(a), .input(b))
        let loss = Term.binary(.subtract, .softplus(logits), .binary(.multiply, .input(x), logits))
        let gradient = Term.binary(.add, .binary(.multiply, .input(x), .unary(.negate, .input(g))),
                                   .binary(.multiply, .input(g), .sigmoid(logits)))
        return (loss, gradient)
    }

    /// The inputs (a, b, x, g) read at the places of `terms`, from the gradient when there is one, else
    /// from the loss (g is then unused: any input); nil when there is neither. Only where they are read:
    /// whether the results are exactly the terms is checked against `terms` after.
    static func inputs(of sinks: (stores: [Term], rowSums: [Term], columnSums: [Term])) -> (Int, Int, Int, Int)? {
        if let gradient = sinks.stores.first ?? sinks.columnSums.first {
            guard case .binary(.add, .binary(.multiply, .input(let x), .unary(.negate, .input(let g))),
                               .binary(.multiply, _, .sigmoid(.binary(.add, .input(let a), .input(let b))))) = gradient
            else { return nil }
            return (a, b, x, g)
        }
        guard let loss = sinks.rowSums.first,
              case .binary(.subtract, .softplus(.binary(.add, .input(let a), .input(let b))),
                           .binary(.multiply, .input(let x), _)) = loss
        else { return nil }
        return (a, b, x, x)
    }

    /// Runs one direct one-row block: `width` (a multiple of 16) columns from `c0` of row r, of task
    /// `chunk`, whose rows start at `chunkStart`. The column sum's partials are those of slot 0 (the
    /// only one): task `chunk`'s row of them.
    @inline(__always)
    func run(row r: Int, column c0: Int, width: Int, chunk: Int, chunkStart: Int) {
        let total = Self.loop(left.at(row: r, column: c0), right.at(row: r, column: c0), data.at(row: r, column: c0),
                              seed: seed.map { $0[r * seedStride] } ?? 0, store: store.map { $0 + r * columns + c0 },
                              partial: partials.map { $0 + chunk * columns + c0 }, firstRow: r == chunkStart,
                              vectors: width >> 4)
        if let rowSums { rowSums[r] = c0 == 0 ? total : rowSums[r] + total }
    }

    /// The loop: per vector, the interpreter's ops in its order (see the header). Returns the block's
    /// row sum of the loss. Not inlined: softplus/σ's constants stay in vector registers for the loop.
    @inline(never)
    static func loop(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ x: UnsafePointer<Float>, seed: Float,
                     store: UnsafeMutablePointer<Float>?, partial: UnsafeMutablePointer<Float>?, firstRow: Bool,
                     vectors: Int) -> Float {
        typealias F = VectorFunctions
        let g = V(repeating: seed)
        let minusG = F.Negate.apply(g)
        var acc = V()
        for v in 0..<vectors {
            let logits = F.Add.apply(VectorMath.load(a + 16 * v), VectorMath.load(b + 16 * v))
            let (softplus, sigmoid) = VectorMath.softplusAndSigmoid(logits)
            let xv = VectorMath.load(x + 16 * v)
            acc += F.Subtract.apply(softplus, F.Multiply.apply(xv, logits))
            let dl = F.Add.apply(F.Multiply.apply(xv, minusG), F.Multiply.apply(g, sigmoid))
            if let store { VectorMath.store(dl, store + 16 * v) }
            if let partial {
                VectorMath.store(firstRow ? dl : VectorMath.load(partial + 16 * v) + dl, partial + 16 * v)
            }
        }
        return VectorMath.sum(acc)
    }
}
