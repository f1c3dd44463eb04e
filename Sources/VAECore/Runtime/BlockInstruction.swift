/// A fused kernel's instruction as plain data, for the block loop of `FusedKernelRunner`.
///
/// `Instruction` carries an `Op`, an enum with String and array payloads: every copy of an instruction
/// out of the code array was an outlined copy (and destroy) with reference counting, per instruction
/// per block, which cost about as much as the vector loop of a short block. This form has only small
/// integer fields, so reading it is a few plain loads. It is translated once, when the runner is bound,
/// together with how the instruction runs in a direct block (`FusedKernelRunner.DirectForm`).
struct BlockInstruction {
    enum Kind: UInt8 {
        case load, unary, binary, copy, softplusSigmoid, store, rowSum, columnSum
    }

    var kind: Kind
    /// The op of a `.unary` or `.binary`.
    var function: ElementwiseFunction
    /// A `.load` that reads its input in place in a direct block.
    var inPlace: Bool
    /// A `.store` already done, in a direct block, by the instruction that defined its register.
    var done: Bool
    /// The registers defined: first (load, unary, binary, copy, softplus of softplusSigmoid), second
    /// (sigmoid of softplusSigmoid); -1 for none.
    var defined: Int32
    var definedSecond: Int32
    /// The registers read (-1 for none); for `.load`, `a` is the input index.
    var a: Int32
    var b: Int32
    /// The store, row-sum or column-sum slot of `.store`, `.rowSum`, `.columnSum`.
    var slot: Int32
    /// Store slots the defined registers are written to instead of their own floats in a direct
    /// block (-1 for none).
    var storeSlot: Int32
    var storeSlotSecond: Int32
    /// A `.binary` whose result is the operand of the `.softplusSigmoid` right after it: that
    /// instruction computes both in one pass (the result is still written to its register).
    var feedsNext = false
    /// A pair (`PairedOperands.swift`): `feeds` is set on a `.binary` or cheap `.unary` whose result
    /// only the `.binary` at index `feeds` reads (only loads between), and `fedBy` on that binary: it
    /// computes the first op in its own pass, which then never writes its result. -1 for none.
    var feeds: Int32 = -1
    var fedBy: Int32 = -1
    /// A per-column `.load` whose register only first ops of pairs read, as their first operand: in
    /// a one-row block it fills one vector, read for every vector of the block (the value is the same
    /// over the row). Those first ops are marked `firstOperandIsSplat`.
    var splat = false
    var firstOperandIsSplat = false
    /// A `.binary` whose result a later `.rowSum` or `.columnSum` (only stores between) sums: in a
    /// direct one-row block the binary accumulates the sum in its own pass (same order of adds) and
    /// that instruction is `absorbed`. `.load` here means none.
    var sums: Kind = .load
    var sumSlot: Int32 = -1
    var absorbed = false
    /// A `.binary` with `sums` whose result nothing but that sum reads (no store, no later read): the
    /// pass that absorbs the sum does not write it.
    var onlySummed = false

    init(_ instruction: Instruction, direct form: FusedKernelRunner.DirectForm) {
        kind = .load; function = .add; inPlace = form.inPlace; done = form.done
        defined = -1; definedSecond = -1; a = -1; b = -1; slot = -1
        storeSlot = Int32(form.storeSlots.0); storeSlotSecond = Int32(form.storeSlots.1)
        splat = form.perColumn   // a candidate until `FusedKernelRunner.superinstructions` checks its readers
        switch instruction {
        case .load(let d, let input): kind = .load; defined = Int32(d); a = Int32(input)
        case .unary(let op, let d, let s):
            kind = .unary; function = ElementwiseFunction(op); defined = Int32(d); a = Int32(s)
        case .binary(let op, let d, let x, let y):
            kind = .binary; function = ElementwiseFunction(op); defined = Int32(d); a = Int32(x); b = Int32(y)
        case .copy(let d, let s): kind = .copy; defined = Int32(d); a = Int32(s)
        case .softplusSigmoid(let s, let g, let x):
            kind = .softplusSigmoid; defined = Int32(s); definedSecond = Int32(g); a = Int32(x)
        case .store(let s, let k): kind = .store; a = Int32(s); slot = Int32(k)
        case .rowSum(let s, let k): kind = .rowSum; a = Int32(s); slot = Int32(k)
        case .columnSum(let s, let k): kind = .columnSum; a = Int32(s); slot = Int32(k)
        }
    }
}

/// The IR's elementwise ops without payloads: what a fused kernel's unary and binary instructions run.
enum ElementwiseFunction: UInt8, CaseIterable {
    case negate, exp, log, square, sqrt, abs, relu, sigmoid, tanh, softplus, positiveStep, sign
    case logGamma, digamma, trigamma, cbLogNormalizer, cbLogNormalizerSlope
    case add, subtract, multiply, divide, maximum

    /// The code of an elementwise IR op (found through `op`, whose switch is exhaustive; this runs when
    /// a kernel is bound, never per block).
    init(_ op: Op) {
        guard let function = Self.allCases.first(where: { $0.op == op }) else {
            preconditionFailure("internal error: \(op.mnemonic) is not an elementwise op of a fused kernel")
        }
        self = function
    }

    /// The IR op it stands for.
    var op: Op {
        switch self {
        case .negate: return .negate
        case .exp: return .exp
        case .log: return .log
        case .square: return .square
        case .sqrt: return .sqrt
        case .abs: return .abs
        case .relu: return .relu
        case .sigmoid: return .sigmoid
        case .tanh: return .tanh
        case .softplus: return .softplus
        case .positiveStep: return .positiveStep
        case .sign: return .sign
        case .logGamma: return .logGamma
        case .digamma: return .digamma
        case .trigamma: return .trigamma
        case .cbLogNormalizer: return .cbLogNormalizer
        case .cbLogNormalizerSlope: return .cbLogNormalizerSlope
        case .add: return .add
        case .subtract: return .subtract
        case .multiply: return .multiply
        case .divide: return .divide
        case .maximum: return .maximum
        }
    }
}
