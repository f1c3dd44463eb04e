/// A fused kernel (`Lowering/KernelProgram.swift`) bound to memory at one batch size: runs its register
/// program over the blocks of one task's rows.
///
/// Registers are `stride` floats of a per-thread register file (in L1). A block holds up to
/// `FusedKernel.blockSize` elements: a segment of one row, or whole rows when rows are short, laid out
/// row after row. Vector loops run over whole SIMD16 vectors (lanes past the block are garbage that is
/// never stored or summed); loads, stores and sums handle the exact length.
///
/// Direct blocks. When a block is a whole number of vectors (every block of a [B,400] or [B,784]
/// kernel, and the column pieces of an epilogue, cut at multiples of 32), a register may stand for
/// memory instead of its own floats: a `.load` of a contiguous input reads the input in place (no
/// copy), and an instruction whose result is stored right after writes it straight to the store's
/// memory (no copy either; later reads of the register read it there, still in L1). Every pass over a
/// block costs about as much as an add (L1 load/store bound), so this removes 4 of the 7 passes of
/// bias + relu + step (measured 38 → ≈20 µs over [128, 400] on one core). The operations and their
/// order are unchanged: the same bits.
final class FusedKernelRunner {
    typealias V = SIMD16<Float>
    /// Floats per register: a block plus one vector of slack for stores of whole vectors past a row.
    static let stride = FusedKernel.blockSize + 16

    let kernel: FusedKernel
    let rows: Int
    let columns: Int
    let blockRows: Int
    let chunkRows: Int
    let chunks: Int
    /// The kernel's code as plain data, with each instruction's direct form: the block loop reads only
    /// these tables (no arrays, no enums with payloads: no reference counting per instruction per block).
    private let code: UnsafeMutableBufferPointer<BlockInstruction>
    private let inputs: UnsafeMutableBufferPointer<UnsafePointer<Float>>
    private let modes: UnsafeMutableBufferPointer<Broadcast>
    private let stores: UnsafeMutableBufferPointer<UnsafeMutablePointer<Float>>
    private let rowSums: UnsafeMutableBufferPointer<UnsafeMutablePointer<Float>>
    private let columnSums: [UnsafeMutablePointer<Float>]
    /// chunks × columns floats per column sum: each task's partial sums, added in task order at the end.
    private let partials: UnsafeMutablePointer<Float>?
    /// The whole program as one loop per direct one-row block, when it is the Bernoulli likelihood
    /// kernel (`BernoulliLikelihoodPass`); nil for every other program, or when not allowed.
    let onePass: BernoulliLikelihoodPass?

    /// The first op of a pair, left to its consumer's pass in a block: where its operands were.
    struct DeferredOp {
        var index: Int32
        var x: UnsafeMutablePointer<Float>, xStride: Int, w: UnsafeMutablePointer<Float>
    }

    /// An instruction's form in a direct block.
    struct DirectForm {
        /// A `.load` that reads its input in place.
        var inPlace = false
        /// Store slots the registers this instruction defines are written to instead of their own
        /// floats: (first defined register, second one of `.softplusSigmoid`), -1 for none.
        var storeSlots = (-1, -1)
        /// A `.store` already done by the instruction that defined its register.
        var done = false
        /// A `.load` of a per-column input (one value per row, as a per-example scalar): in a one-row
        /// block, a candidate for `BlockInstruction.splat`.
        var perColumn = false
    }

    /// `allowsOnePass: false` runs every block through the interpreter (for tests comparing the two).
    init(_ kernel: FusedKernel, batch: Int, pointer: (ValueID) -> UnsafeMutablePointer<Float>,
         partials: UnsafeMutablePointer<Float>?, allowsOnePass: Bool = true) {
        self.kernel = kernel
        rows = kernel.domain.batched ? batch : 1
        columns = kernel.domain.featureCount
        blockRows = FusedKernel.blockRows(columns: columns)
        (chunkRows, chunks) = FusedKernel.chunking(rows: rows, columns: columns)
        let inputs = kernel.inputs.map { UnsafePointer(pointer($0.value)) }
        let stores = kernel.stores.map(pointer)
        let direct = Self.directForms(kernel, inputs: inputs, stores: stores, elements: rows * columns)
        code = Self.table(Self.superinstructions(zip(kernel.code, direct).map { BlockInstruction($0, direct: $1) }))
        self.inputs = Self.table(inputs)
        modes = Self.table(kernel.inputs.map(\.mode))
        self.stores = Self.table(stores)
        rowSums = Self.table(kernel.rowSums.map(pointer))
        columnSums = kernel.columnSums.map(pointer)
        self.partials = partials
        precondition(kernel.columnSums.isEmpty || partials != nil, "internal error: no scratch for column sums")
        let inPlace = kernel.inputs.indices.map { i in
            zip(kernel.code, direct).allSatisfy { instruction, form in
                if case .load(_, let input) = instruction, input == i { form.inPlace } else { true }
            }
        }
        onePass = allowsOnePass
            ? BernoulliLikelihoodPass(kernel, inPlace: inPlace, inputs: inputs, stores: stores,
                                      rowSums: kernel.rowSums.map(pointer), partials: partials)
            : nil
    }

    deinit {
        code.deallocate(); inputs.deallocate(); modes.deallocate(); stores.deallocate(); rowSums.deallocate()
    }

    private static func table<T>(_ elements: [T]) -> UnsafeMutableBufferPointer<T> {
        let table = UnsafeMutableBufferPointer<T>.allocate(capacity: elements.count)
        _ = table.initialize(from: elements)
        return table
    }

    /// The direct form of every instruction. A load reads in place only if its input is read whole
    /// (full, or per row: a block then is a segment of one row or whole rows) and no store of the
    /// kernel overlaps it (a store done early would otherwise change what a later read of the
    /// register sees). A store is folded into the instruction just before it (or the one before
    /// that, for the second register of `.softplusSigmoid`) when that instruction defines its register.
    static func directForms(_ kernel: FusedKernel, inputs: [UnsafePointer<Float>], stores: [UnsafeMutablePointer<Float>],
                            elements: Int) -> [DirectForm] {
        let code = kernel.code
        var forms = [DirectForm](repeating: DirectForm(), count: code.count)
        func overlapsAStore(_ p: UnsafePointer<Float>, _ count: Int) -> Bool {
            stores.contains { s in UnsafePointer(s) < p + count && p < UnsafePointer(s) + elements }
        }
        for (i, instruction) in code.enumerated() {
            switch instruction {
            case .load(_, let input):
                let mode = kernel.inputs[input].mode
                let count = mode == .full ? elements : kernel.domain.featureCount
                forms[i].inPlace = (mode == .full || mode == .row) && !overlapsAStore(inputs[input], count)
                forms[i].perColumn = mode == .column
            case .store(let s, let slot):
                // Fold into the defining instruction when only stores lie between them.
                var j = i - 1
                while j >= 0, case .store = code[j] { j -= 1 }
                guard j >= 0 else { continue }
                let defined = Self.defined(by: code[j])
                if defined.0 == s && forms[j].storeSlots.0 < 0 {
                    forms[j].storeSlots.0 = slot; forms[i].done = true
                } else if defined.1 == s && forms[j].storeSlots.1 < 0 {
                    forms[j].storeSlots.1 = slot; forms[i].done = true
                }
            case .unary, .binary, .copy, .softplusSigmoid, .rowSum, .columnSum:
                break
            }
        }
        return forms
    }

    /// Passes over a block merged into one (superinstructions): every pass reads and writes whole
    /// vectors (about as costly as an add), and the softplus/sigmoid pass is long enough to hide a
    /// cheap op's loads and stores. A binary op whose result feeds the `.softplusSigmoid` right after
    /// it runs inside that pass; a row or column sum of a binary op's result (only stores between) is
    /// accumulated in the binary's pass (and not written at all when nothing else reads it, as the
    /// per-example −log p of the likelihood kernel). Each value still goes where it went, in the same
    /// order of operations: the same bits.
    ///
    /// Pairs: a binary op, or a unary one of `pairableUnaries`, whose result only a later binary op
    /// reads (once; only loads between them), and nothing after that, runs inside that op's pass and
    /// is never written (`PairedOperands.swift`). Not chained: the consumer of a pair computes no
    /// pair of its own. A per-column load that only first ops of pairs read (`neg g` and `g·σ` in the
    /// likelihood kernel) fills one vector in a one-row block instead of the whole block (`splat`).
    /// With the three pairs, the unwritten −log p and the splat, the mnist likelihood kernel
    /// ([128, 784]) went from 8 passes a block to 5 and from 161 to 144 µs on one core (medians of 8
    /// interleaved runs' stage minima); the [128, 400] kernels stayed within noise.
    static func superinstructions(_ code: [BlockInstruction]) -> [BlockInstruction] {
        var code = code
        for i in code.indices where code[i].kind == .binary || code[i].kind == .unary {
            if code[i].kind == .binary, i + 1 < code.count, code[i + 1].kind == .softplusSigmoid,
               code[i + 1].a == code[i].defined {
                code[i].feedsNext = true
                continue
            }
            if let consumer = consumerOfPair(code, i) {
                code[i].feeds = Int32(consumer)
                code[consumer].fedBy = Int32(i)
                continue
            }
            guard code[i].kind == .binary else { continue }
            var j = i + 1
            while j < code.count, code[j].kind == .store { j += 1 }
            if j < code.count, code[j].kind == .rowSum || code[j].kind == .columnSum, code[j].a == code[i].defined {
                code[i].sums = code[j].kind
                code[i].sumSlot = code[j].slot
                code[j].absorbed = true
                code[i].onlySummed = code[i].storeSlot < 0 && isUnread(code, code[i].defined, from: i + 1, except: j)
            }
        }
        for i in code.indices where code[i].splat {
            code[i].splat = onlyPairsReadAsTheirFirstOperand(code, i)
            guard code[i].splat else { continue }
            let d = code[i].defined
            for j in (i + 1)..<code.count {
                if reads(code[j], d) { code[j].firstOperandIsSplat = true }
                if code[j].defined == d || code[j].definedSecond == d { break }
            }
        }
        return code
    }

    /// Whether the only readers of the register a load defines (until it is defined again) are first
    /// ops of pairs right before their consumers, reading it as their first operand only.
    static func onlyPairsReadAsTheirFirstOperand(_ code: [BlockInstruction], _ i: Int) -> Bool {
        let d = code[i].defined
        for j in (i + 1)..<code.count {
            let c = code[j]
            if reads(c, d) {
                guard c.feeds == Int32(j + 1), c.a == d, c.kind == .unary || c.b != d else { return false }
            }
            if c.defined == d || c.definedSecond == d { return true }
        }
        return true
    }

    /// The binary op that can compute instruction i in its pass: i is a binary op or a pairable unary
    /// one, not itself the consumer of a pair; only loads, none of its register, lie between them;
    /// that op reads i's register as exactly one operand, and no later instruction reads it before it
    /// is defined again.
    static func consumerOfPair(_ code: [BlockInstruction], _ i: Int) -> Int? {
        let producer = code[i], d = producer.defined
        guard producer.kind == .binary || pairableUnaries.contains(producer.function), producer.fedBy < 0 else { return nil }
        var c = i + 1
        while c < code.count, code[c].kind == .load {
            if code[c].defined == d { return nil }
            c += 1
        }
        guard c < code.count, code[c].kind == .binary, (code[c].a == d) != (code[c].b == d),
              code[c].defined == d || isUnread(code, d, from: c + 1)
        else { return nil }
        return c
    }

    /// Whether no instruction from index `start` on (but `except`) reads register r before it is
    /// defined again.
    static func isUnread(_ code: [BlockInstruction], _ r: Int32, from start: Int, except: Int = -1) -> Bool {
        for j in start..<code.count where j != except {
            if reads(code[j], r) { return false }
            if code[j].defined == r || code[j].definedSecond == r { return true }
        }
        return true
    }

    /// Whether an instruction reads register r.
    static func reads(_ instruction: BlockInstruction, _ r: Int32) -> Bool {
        switch instruction.kind {
        case .load: return false
        case .binary: return instruction.a == r || instruction.b == r
        case .unary, .copy, .softplusSigmoid, .store, .rowSum, .columnSum: return instruction.a == r
        }
    }

    /// The registers an instruction writes (-1: none).
    static func defined(by instruction: Instruction) -> (Int, Int) {
        switch instruction {
        case .load(let d, _), .unary(_, let d, _), .binary(_, let d, _, _), .copy(let d, _): return (d, -1)
        case .softplusSigmoid(let s, let g, _): return (s, g)
        case .store, .rowSum, .columnSum: return (-1, -1)
        }
    }

    /// Runs the rows of task `chunk` with the register file `registers`.
    func run(chunk: Int, registers: UnsafeMutablePointer<Float>) {
        let first = chunk * chunkRows, end = min(rows, first + chunkRows)
        var r = first
        while r < end {
            let h = min(blockRows, end - r)
            var c0 = 0
            while c0 < columns {
                let w = blockRows == 1 ? min(FusedKernel.blockSize, columns - c0) : columns
                block(row: r, rows: h, column: c0, width: w, chunk: chunk, chunkStart: first, registers)
                c0 += w
            }
            r += h
        }
    }

    /// Runs the given whole rows (an epilogue of an image kernel, after each range of examples it
    /// computes): the same blocks and operations per row as `run(chunk:)`, so the same bits. Only for
    /// kernels without column sums (their partials are per chunk).
    func run(rows range: Range<Int>, registers: UnsafeMutablePointer<Float>) {
        precondition(kernel.columnSums.isEmpty, "internal error: a row range of a kernel with column sums")
        var r = range.lowerBound
        while r < range.upperBound {
            let h = min(blockRows, range.upperBound - r)
            var c0 = 0
            while c0 < columns {
                let w = blockRows == 1 ? min(FusedKernel.blockSize, columns - c0) : columns
                block(row: r, rows: h, column: c0, width: w, chunk: 0, chunkStart: r, registers)
                c0 += w
            }
            r += h
        }
    }

    /// Runs every chunk, over the given columns only (an epilogue of a GEMM piece): the same operations
    /// per element and per column sum as the whole kernel, so the same bits. Only for kernels without
    /// per-row sums, over rows of at least half a block.
    func run(columns range: Range<Int>, registers: UnsafeMutablePointer<Float>) {
        precondition(blockRows == 1 && kernel.rowSums.isEmpty, "internal error: a column range of a kernel with row sums")
        for chunk in 0..<chunks {
            let first = chunk * chunkRows, end = min(rows, first + chunkRows)
            for r in first..<end {
                var c0 = range.lowerBound
                while c0 < range.upperBound {
                    let w = min(FusedKernel.blockSize, range.upperBound - c0)
                    block(row: r, rows: 1, column: c0, width: w, chunk: chunk, chunkStart: first, registers)
                    c0 += w
                }
            }
        }
        finish(columns: range)
    }

    /// Adds the tasks' partial column sums in task order.
    func finish() { finish(columns: 0..<columns) }

    private func finish(columns range: Range<Int>) {
        guard let partials else { return }
        for (slot, out) in columnSums.enumerated() {
            let base = partials + slot * chunks * columns
            var c = range.lowerBound
            while c < range.upperBound {
                let n = min(16, range.upperBound - c)
                var acc = n == 16 ? VectorMath.load(base + c) : VectorMath.loadPartial(base + c, n)
                for k in 1..<max(chunks, 1) {
                    let p = base + k * columns + c
                    acc += n == 16 ? VectorMath.load(p) : VectorMath.loadPartial(p, n)
                }
                if n == 16 { VectorMath.store(acc, out + c) } else { VectorMath.storePartial(acc, out + c, n) }
                c += 16
            }
        }
    }

    @inline(__always)
    private func block(row r: Int, rows h: Int, column c0: Int, width w: Int, chunk: Int, chunkStart: Int,
                       _ registers: UnsafeMutablePointer<Float>) {
        let n = h * w
        let vectors = (n + 15) >> 4
        // A direct block: whole vectors, contiguous in every full input and store.
        let isDirect = n & 15 == 0 && (h == 1 || w == columns)
        // The likelihood kernel's whole program in one loop: 5 passes → 1 (`BernoulliLikelihoodPass`).
        if isDirect && h == 1, let onePass {
            onePass.run(row: r, column: c0, width: w, chunk: chunk, chunkStart: chunkStart)
            return
        }
        let count = max(1, kernel.registers)
        let code = self.code, inputs = self.inputs, modes = self.modes, stores = self.stores
        withUnsafeTemporaryAllocation(of: UnsafeMutablePointer<Float>.self, capacity: count) { table in
            // Where each register's current value is: its own floats, an input, or a store's memory.
            let at = table.baseAddress!
            for i in 0..<count { at[i] = registers + i * Self.stride }
            @inline(__always) func own(_ i: Int32) -> UnsafeMutablePointer<Float> { registers + Int(i) * Self.stride }
            @inline(__always) func out(_ slot: Int32) -> UnsafeMutablePointer<Float> { stores[Int(slot)] + r * columns + c0 }
            /// Where a result goes for register d (stored right after to `slot` when >= 0), and binds d there.
            @inline(__always) func destination(_ d: Int32, _ slot: Int32) -> UnsafeMutablePointer<Float> {
                let p = isDirect && slot >= 0 ? out(slot) : own(d)
                at[Int(d)] = p
                return p
            }
            /// Whether a load only points its register at its input (a per-row input is contiguous over
            /// the block only when the block is one row).
            @inline(__always) func bindsInPlace(_ load: BlockInstruction) -> Bool {
                isDirect && load.inPlace && load.storeSlot < 0 && (h == 1 || modes[Int(load.a)] == .full)
            }
            /// The first op of a pair deferred to its consumer's pass, unless a load before the consumer
            /// would overwrite the floats of one of its operands (a load that copies into the operand's
            /// register).
            @inline(__always) func deferral(_ index: Int, _ producer: BlockInstruction) -> DeferredOp? {
                let w = producer.kind == .binary ? producer.b : producer.a
                for j in (index + 1)..<Int(producer.feeds) {
                    let load = code[j]
                    if (load.defined == producer.a || load.defined == w) && !bindsInPlace(load) { return nil }
                }
                return DeferredOp(index: Int32(index), x: at[Int(producer.a)], xStride: producer.firstOperandIsSplat && h == 1 ? 0 : 16,
                                  w: at[Int(w)])
            }
            var deferred = DeferredOp(index: -1, x: registers, xStride: 16, w: registers)
            for index in 0..<code.count {
                let instruction = code[index]
                switch instruction.kind {
                case .load:
                    let input = Int(instruction.a), d = instruction.defined
                    let src = inputs[input], mode = modes[input]
                    if bindsInPlace(instruction) {
                        at[Int(d)] = UnsafeMutablePointer(mutating: mode == .full ? src + r * columns + c0 : src + c0)
                        continue
                    }
                    if instruction.splat && h == 1 {
                        // One vector, in the register's slack: its readers read it for every vector
                        // of the block. Nothing else writes there meanwhile: a vector loop over a
                        // one-row block writes at most a block, even one that defines this register
                        // (a pair's consumer may, while it still reads the splat).
                        let splat = own(d) + FusedKernel.blockSize
                        VectorMath.store(V(repeating: src[r]), splat)
                        at[Int(d)] = splat
                        continue
                    }
                    // The per-row fills and the channel tiling below may write up to a vector past a row
                    // or a run: harmless in a register (the next row's fill, or the register's slack), but
                    // a direct block's store has no slack past the block, where another range of rows, or
                    // another value, is. Such a load is filled in its own register and copied out exactly.
                    // (Whole-block copies and fills of a direct block are whole vectors: exact.)
                    let viaRegister = isDirect && instruction.storeSlot >= 0 && mode != .full && mode != .scalar
                    let dst = viaRegister ? own(d) : destination(d, instruction.storeSlot)
                    switch mode {
                    case .full: Self.copy(src + r * columns + c0, dst, n)
                    case .row: for i in 0..<h { Self.copy(src + c0, dst + i * w, w) }
                    case .column: for i in 0..<h { Self.fill(dst + i * w, src[r + i], w) }
                    case .scalar: Self.fill(dst, src[0], n)
                    case .channel(let period):
                        for i in 0..<h { Self.tile(src, period: period, from: c0, into: dst + i * w, w) }
                    }
                    if viaRegister { Self.copyOut(dst, destination(d, instruction.storeSlot), n) }
                case .unary:
                    if instruction.feeds >= 0, let op = deferral(index, instruction) { deferred = op; continue }
                    let src = at[Int(instruction.a)]
                    Self.unary(instruction.function, destination(instruction.defined, instruction.storeSlot), src, vectors, n)
                case .binary:
                    if instruction.feedsNext { continue }
                    if instruction.feeds >= 0, let op = deferral(index, instruction) { deferred = op; continue }
                    // Operands are read before `destination` maps the defined register.
                    let operands: Operands
                    if instruction.fedBy >= 0 && deferred.index == instruction.fedBy {
                        // A pair: the deferred op (its result dead after this one) computed in this pass.
                        let producer = code[Int(instruction.fedBy)]
                        let onTheLeft = instruction.a == producer.defined
                        operands = Operands(computing: producer.function, deferred.x, stride: deferred.xStride, deferred.w,
                                            onTheLeft: onTheLeft, of: at[Int(onTheLeft ? instruction.b : instruction.a)])
                    } else {
                        operands = Operands(at[Int(instruction.a)], at[Int(instruction.b)])
                    }
                    let result = destination(instruction.defined, instruction.storeSlot)
                    guard isDirect && h == 1 && instruction.sums != .load else {
                        Self.binary(instruction.function, operands, result, vectors)
                        continue
                    }
                    if instruction.sums == .rowSum {
                        let sums = rowSums[Int(instruction.sumSlot)]
                        let total = Self.binarySummingRow(instruction.function, operands,
                                                          instruction.onlySummed ? nil : result, vectors)
                        sums[r] = c0 == 0 ? total : sums[r] + total
                    } else {
                        let partial = partials! + (Int(instruction.sumSlot) * chunks + chunk) * columns + c0
                        Self.binarySummingColumns(instruction.function, operands,
                                                  instruction.onlySummed ? nil : result, vectors,
                                                  into: partial, first: r == chunkStart)
                    }
                case .softplusSigmoid:
                    // Operands are read before `destination` maps the defined registers: a defined
                    // register may be an operand's (registers are reused once dead).
                    let softplus: UnsafeMutablePointer<Float>, sigmoid: UnsafeMutablePointer<Float>
                    if index > 0 && code[index - 1].feedsNext {
                        // The binary op before, computed in this pass: its result goes where it would have.
                        let producer = code[index - 1]
                        let x = at[Int(producer.a)], y = at[Int(producer.b)]
                        let operand = destination(producer.defined, producer.storeSlot)
                        softplus = destination(instruction.defined, instruction.storeSlot)
                        sigmoid = destination(instruction.definedSecond, instruction.storeSlotSecond)
                        Self.softplusSigmoid(of: producer.function, x, y, storing: operand, softplus, sigmoid, vectors)
                    } else {
                        let src = at[Int(instruction.a)]
                        softplus = destination(instruction.defined, instruction.storeSlot)
                        sigmoid = destination(instruction.definedSecond, instruction.storeSlotSecond)
                        Self.softplusSigmoid(src, softplus, sigmoid, vectors)
                    }
                case .copy:
                    let src = at[Int(instruction.a)], dst = destination(instruction.defined, instruction.storeSlot)
                    for v in 0..<vectors { VectorMath.store(VectorMath.load(src + 16 * v), dst + 16 * v) }
                case .store:
                    if isDirect && instruction.done { continue }
                    Self.copyOut(at[Int(instruction.a)], out(instruction.slot), n)
                case .rowSum:
                    if isDirect && h == 1 && instruction.absorbed { continue }
                    let src = at[Int(instruction.a)], sums = rowSums[Int(instruction.slot)]
                    for i in 0..<h {
                        let total = Self.sum(src + i * w, w)
                        sums[r + i] = c0 == 0 ? total : sums[r + i] + total
                    }
                case .columnSum:
                    if isDirect && h == 1 && instruction.absorbed { continue }
                    let src = at[Int(instruction.a)]
                    let partial = partials! + (Int(instruction.slot) * chunks + chunk) * columns + c0
                    for i in 0..<h {
                        if r + i == chunkStart { Self.copyOut(src + i * w, partial, w) } else { Self.accumulate(src + i * w, partial, w) }
                    }
                }
            }
        }
    }

    // MARK: Vector loops

    /// Memory → register: n floats, never reading past the source; the register may be written past n.
    @inline(__always) static func copy(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 16 <= n { VectorMath.store(VectorMath.load(src + i), dst + i); i += 16 }
        if i < n { VectorMath.store(VectorMath.loadPartial(src + i, n - i), dst + i) }
    }

    /// Register → memory: exactly n floats.
    @inline(__always) static func copyOut(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 16 <= n { VectorMath.store(VectorMath.load(src + i), dst + i); i += 16 }
        if i < n { VectorMath.storePartial(VectorMath.load(src + i), dst + i, n - i) }
    }

    /// dst[0..<n] += src[0..<n], exactly n floats of dst.
    @inline(__always) static func accumulate(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        var i = 0
        while i + 16 <= n { VectorMath.store(VectorMath.load(dst + i) + VectorMath.load(src + i), dst + i); i += 16 }
        if i < n { VectorMath.storePartial(VectorMath.loadPartial(dst + i, n - i) + VectorMath.load(src + i), dst + i, n - i) }
    }

    /// Memory → register: dst[j] = src[(start + j) mod period] for j < n (a per-channel vector along
    /// an image row), copied one contiguous run of channels at a time.
    @inline(__always) static func tile(_ src: UnsafePointer<Float>, period: Int, from start: Int,
                                       into dst: UnsafeMutablePointer<Float>, _ n: Int) {
        if period == 1 { fill(dst, src[0], n); return }
        var j = 0, p = start % period
        while j < n {
            // `copy` may write up to a vector past the run: the next run or the register's slack.
            let run = min(period - p, n - j)
            copy(src + p, dst + j, run)
            j += run
            p = 0
        }
    }

    @inline(__always) static func fill(_ dst: UnsafeMutablePointer<Float>, _ value: Float, _ n: Int) {
        let v = V(repeating: value)
        var i = 0
        while i < n { VectorMath.store(v, dst + i); i += 16 }
    }

    /// Σ of n floats of a register: 16 lane sums, then the lanes.
    @inline(__always) static func sum(_ src: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = V()
        var i = 0
        while i + 16 <= n { acc += VectorMath.load(src + i); i += 16 }
        if i < n { acc += VectorMath.loadPartial(src + i, n - i) }
        return VectorMath.sum(acc)
    }

    /// An elementwise unary op over a block: whole vectors (the registers have room), the special
    /// functions only on the block's own lanes, lane by lane in Double as the interpreter
    /// (`VectorMath.apply`) does. One case per op so each loop is specialised for its function.
    @inline(__always)
    static func unary(_ function: ElementwiseFunction, _ d: UnsafeMutablePointer<Float>, _ s: UnsafePointer<Float>,
                      _ vectors: Int, _ n: Int) {
        typealias F = VectorFunctions
        let all = 16 * vectors
        switch function {
        case .negate: VectorMath.map(F.Negate.self, s, d, all)
        case .exp: VectorMath.map(F.Exp.self, s, d, all)
        case .log: VectorMath.map(F.Log.self, s, d, all)
        case .square: VectorMath.map(F.Square.self, s, d, all)
        case .sqrt: VectorMath.map(F.Sqrt.self, s, d, all)
        case .abs: VectorMath.map(F.Abs.self, s, d, all)
        case .relu: VectorMath.map(F.Relu.self, s, d, all)
        case .sigmoid: VectorMath.map(F.Sigmoid.self, s, d, all)
        case .tanh: VectorMath.map(F.Tanh.self, s, d, all)
        case .softplus: VectorMath.map(F.Softplus.self, s, d, all)
        case .positiveStep: VectorMath.map(F.Step.self, s, d, all)
        case .sign: VectorMath.map(F.Sign.self, s, d, all)
        case .logGamma, .digamma, .trigamma, .cbLogNormalizer, .cbLogNormalizerSlope:
            let op = function.op
            for i in 0..<n { d[i] = VectorMath.scalarSpecial(op, s[i]) }
        case .add, .subtract, .multiply, .divide, .maximum:
            preconditionFailure("internal error: a binary op in a unary instruction")
        }
    }

    /// softplus and σ of whole vectors (one exp for both). Not inlined: its two dozen constants then
    /// live in vector registers only during this loop, not across the block loop's other calls.
    @inline(never)
    static func softplusSigmoid(_ x: UnsafePointer<Float>, _ softplus: UnsafeMutablePointer<Float>,
                                _ sigmoid: UnsafeMutablePointer<Float>, _ vectors: Int) {
        for v in 0..<vectors {
            let (a, b) = VectorMath.softplusAndSigmoid(VectorMath.load(x + 16 * v))
            VectorMath.store(a, softplus + 16 * v)
            VectorMath.store(b, sigmoid + 16 * v)
        }
    }

    /// t = a ∘ b, stored, then softplus and σ of t, vector by vector (a superinstruction). Each store
    /// of a vector follows the reads of that vector only, so registers shared between the operands and
    /// the results give what the two passes one after the other give.
    @inline(never)
    static func softplusSigmoid(of function: ElementwiseFunction, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                storing t: UnsafeMutablePointer<Float>, _ softplus: UnsafeMutablePointer<Float>,
                                _ sigmoid: UnsafeMutablePointer<Float>, _ vectors: Int) {
        struct Pass: BinaryPass {
            let t: UnsafeMutablePointer<Float>
            let softplus: UnsafeMutablePointer<Float>, sigmoid: UnsafeMutablePointer<Float>, vectors: Int
            @inline(__always) func run<G: VectorFunction2, O: OperandSource>(_: G.Type, _ operands: O) {
                for v in 0..<vectors {
                    let (a, b) = operands.operands(v)
                    let x = G.apply(a, b)
                    VectorMath.store(x, t + 16 * v)
                    let (p, q) = VectorMath.softplusAndSigmoid(x)
                    VectorMath.store(p, softplus + 16 * v)
                    VectorMath.store(q, sigmoid + 16 * v)
                }
            }
        }
        dispatch(function, RegisterOperands(a: a, b: b), Pass(t: t, softplus: softplus, sigmoid: sigmoid, vectors: vectors))
    }

    /// y = a ∘ b over whole vectors, returning Σ y as `sum(_:_:)` adds it (16 lane sums in vector
    /// order, then the lanes): a binary op and the row sum of its result in one pass. y is not
    /// written when nil.
    static func binarySummingRow(_ function: ElementwiseFunction, _ operands: Operands,
                                 _ y: UnsafeMutablePointer<Float>?, _ vectors: Int) -> Float {
        struct Pass: BinaryPass {
            let y: UnsafeMutablePointer<Float>?, vectors: Int
            @inline(__always) func run<G: VectorFunction2, O: OperandSource>(_: G.Type, _ operands: O) -> Float {
                var acc = V()
                for v in 0..<vectors {
                    let (a, b) = operands.operands(v)
                    let r = G.apply(a, b)
                    if let y { VectorMath.store(r, y + 16 * v) }
                    acc += r
                }
                return VectorMath.sum(acc)
            }
        }
        return dispatch(function, operands, Pass(y: y, vectors: vectors))
    }

    static func binarySummingRow(_ function: ElementwiseFunction, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                 _ y: UnsafeMutablePointer<Float>, _ vectors: Int) -> Float {
        binarySummingRow(function, Operands(a, b), y, vectors)
    }

    /// y = a ∘ b over whole vectors of one row, and the row added to (or, the first row of a task,
    /// copied into) its task's partial column sums: a binary op and its column sum in one pass. y is
    /// not written when nil.
    static func binarySummingColumns(_ function: ElementwiseFunction, _ operands: Operands,
                                     _ y: UnsafeMutablePointer<Float>?, _ vectors: Int,
                                     into partial: UnsafeMutablePointer<Float>, first: Bool) {
        struct Pass: BinaryPass {
            let y: UnsafeMutablePointer<Float>?, vectors: Int
            let partial: UnsafeMutablePointer<Float>, first: Bool
            @inline(__always) func run<G: VectorFunction2, O: OperandSource>(_: G.Type, _ operands: O) {
                for v in 0..<vectors {
                    let (a, b) = operands.operands(v)
                    let r = G.apply(a, b)
                    if let y { VectorMath.store(r, y + 16 * v) }
                    VectorMath.store(first ? r : VectorMath.load(partial + 16 * v) + r, partial + 16 * v)
                }
            }
        }
        dispatch(function, operands, Pass(y: y, vectors: vectors, partial: partial, first: first))
    }

    static func binarySummingColumns(_ function: ElementwiseFunction, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                     _ y: UnsafeMutablePointer<Float>, _ vectors: Int,
                                     into partial: UnsafeMutablePointer<Float>, first: Bool) {
        binarySummingColumns(function, Operands(a, b), y, vectors, into: partial, first: first)
    }

    /// An elementwise binary op over whole vectors of a block.
    static func binary(_ function: ElementwiseFunction, _ operands: Operands, _ y: UnsafeMutablePointer<Float>,
                       _ vectors: Int) {
        struct Pass: BinaryPass {
            let y: UnsafeMutablePointer<Float>, vectors: Int
            @inline(__always) func run<G: VectorFunction2, O: OperandSource>(_: G.Type, _ operands: O) {
                for v in 0..<vectors {
                    let (a, b) = operands.operands(v)
                    VectorMath.store(G.apply(a, b), y + 16 * v)
                }
            }
        }
        dispatch(function, operands, Pass(y: y, vectors: vectors))
    }

    static func binary(_ function: ElementwiseFunction, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                       _ y: UnsafeMutablePointer<Float>, _ vectors: Int) {
        binary(function, Operands(a, b), y, vectors)
    }

    /// The unary ops that can be the computed operand of a pair: those whose vector form is an
    /// instruction or two, for which a pass of their own is mostly loads and stores. (The special
    /// functions are long enough to hide them, and each would add 15 copies of its loop.)
    static let pairableUnaries: Set<ElementwiseFunction> = [.negate, .abs, .square, .relu, .positiveStep]

    /// Runs `pass` with the operand source `operands` describes: two registers, or a pair whose
    /// earlier op is one of the binary ops or of `pairableUnaries` (the one switch over the ops that
    /// can be computed operands; 11 sources × 5 ops × 3 passes of loops).
    @inline(__always)
    static func dispatch<P: BinaryPass>(_ function: ElementwiseFunction, _ operands: Operands, _ pass: P) -> P.Result {
        typealias F = VectorFunctions
        guard let inner = operands.inner, let x = operands.x, let w = operands.w else {
            return dispatch(function, RegisterOperands(a: operands.a, b: operands.b), pass)
        }
        @inline(__always) func computing<H: VectorFunction2>(_: H.Type) -> P.Result {
            dispatch(function, ComputedOperand<H>(x: x, xStride: operands.xStride, w: w, other: operands.a,
                                                  computedIsLeft: operands.computedIsLeft), pass)
        }
        switch inner {
        case .add: return computing(F.Add.self)
        case .subtract: return computing(F.Subtract.self)
        case .multiply: return computing(F.Multiply.self)
        case .divide: return computing(F.Divide.self)
        case .maximum: return computing(F.Maximum.self)
        case .negate: return computing(UnaryAsBinary<F.Negate>.self)
        case .abs: return computing(UnaryAsBinary<F.Abs>.self)
        case .square: return computing(UnaryAsBinary<F.Square>.self)
        case .relu: return computing(UnaryAsBinary<F.Relu>.self)
        case .positiveStep: return computing(UnaryAsBinary<F.Step>.self)
        case .exp, .log, .sqrt, .sigmoid, .tanh, .softplus, .sign,
             .logGamma, .digamma, .trigamma, .cbLogNormalizer, .cbLogNormalizerSlope:
            preconditionFailure("internal error: \(inner) as the computed operand of a pair")
        }
    }

    /// Runs `pass` specialised for the binary op `function` over the operand source `operands` (the one
    /// switch over the binary ops of the fused runner's vector loops).
    @inline(__always)
    static func dispatch<P: BinaryPass, O: OperandSource>(_ function: ElementwiseFunction, _ operands: O, _ pass: P) -> P.Result {
        typealias F = VectorFunctions
        switch function {
        case .add: return pass.run(F.Add.self, operands)
        case .subtract: return pass.run(F.Subtract.self, operands)
        case .multiply: return pass.run(F.Multiply.self, operands)
        case .divide: return pass.run(F.Divide.self, operands)
        case .maximum: return pass.run(F.Maximum.self, operands)
        case .negate, .exp, .log, .square, .sqrt, .abs, .relu, .sigmoid, .tanh, .softplus, .positiveStep, .sign,
             .logGamma, .digamma, .trigamma, .cbLogNormalizer, .cbLogNormalizerSlope:
            preconditionFailure("internal error: a unary op in a binary instruction")
        }
    }
}

/// A vector loop over a binary op, generic in the op and in where its operands come from, so that
/// `FusedKernelRunner.dispatch` can run it specialised for each.
protocol BinaryPass {
    associatedtype Result
    func run<G: VectorFunction2, O: OperandSource>(_: G.Type, _ operands: O) -> Result
}
