/// Where the two operands of a fused kernel's binary pass come from, vector by vector: two registers,
/// or one register and the result of the instruction before, computed in the same vector loop (a
/// pair superinstruction, `FusedKernelRunner.superinstructions`).
///
/// Computing the earlier op inside the later one's loop saves that op's own pass: one store and one
/// load of every vector of its result, and the loop itself. Each lane still gets the same op on the
/// same values in the same order: the same bits.
protocol OperandSource {
    /// The operands of vector `v` of the block.
    func operands(_ v: Int) -> (SIMD16<Float>, SIMD16<Float>)
}

/// Both operands read from registers (or memory standing for them).
struct RegisterOperands: OperandSource {
    let a: UnsafePointer<Float>, b: UnsafePointer<Float>

    @inline(__always) func operands(_ v: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        (VectorMath.load(a + 16 * v), VectorMath.load(b + 16 * v))
    }
}

/// One operand is t = F(x, w), computed here; the other is read from a register. `computedIsLeft`
/// says which side t is on (subtract and divide are not symmetric; maximum is not either, in bits).
/// `xStride` is 16, or 0 when x is one vector for the whole block (a splat per-column load): a
/// run-time stride rather than a type, so as not to double the loops' copies.
struct ComputedOperand<F: VectorFunction2>: OperandSource {
    let x: UnsafePointer<Float>, xStride: Int, w: UnsafePointer<Float>, other: UnsafePointer<Float>
    let computedIsLeft: Bool

    @inline(__always) func operands(_ v: Int) -> (SIMD16<Float>, SIMD16<Float>) {
        let t = F.apply(VectorMath.load(x + xStride * v), VectorMath.load(w + 16 * v))
        let o = VectorMath.load(other + 16 * v)
        return computedIsLeft ? (t, o) : (o, t)
    }
}

/// A unary function as a binary one that ignores its second operand, so that a unary op can be the
/// computed operand of a pair (its `w` is its `x`; the unused load is dead code).
enum UnaryAsBinary<F: VectorFunction>: VectorFunction2 {
    @_transparent static func apply(_ a: SIMD16<Float>, _: SIMD16<Float>) -> SIMD16<Float> { F.apply(a) }
}

/// The operands of one binary instruction as plain data, as the block loop finds them: chosen at run
/// time, turned into an `OperandSource` type by `FusedKernelRunner.dispatch(_:_:_:)`.
struct Operands {
    /// Registers: the two operands. A pair: `a` is the register operand, `b` unused.
    var a: UnsafePointer<Float>, b: UnsafePointer<Float>
    /// A pair: the earlier op and its operands (`w == x` for a unary op).
    var inner: ElementwiseFunction? = nil
    var x: UnsafePointer<Float>? = nil, w: UnsafePointer<Float>? = nil
    var xStride = 16
    var computedIsLeft = false

    init(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>) { self.a = a; self.b = b }

    /// The result of `inner` over (x, w) on the left (or the right) of the register operand `other`;
    /// x advances `stride` floats a vector (0: one vector for the block).
    init(computing inner: ElementwiseFunction, _ x: UnsafePointer<Float>, stride: Int = 16, _ w: UnsafePointer<Float>,
         onTheLeft: Bool, of other: UnsafePointer<Float>) {
        a = other; b = other
        self.inner = inner; self.x = x; xStride = stride; self.w = w; computedIsLeft = onTheLeft
    }
}
