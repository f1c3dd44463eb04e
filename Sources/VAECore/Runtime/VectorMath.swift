// Elementary functions on SIMD16<Float>, for the fused kernels and the plain interpreter alike.
//
// Both evaluators call these same functions lane by lane, so an elementwise op gives the same bits in
// the fused program and in the one-node-at-a-time interpreter; only the order of sums differs.
//
// Accuracy, measured against Double-precision Foundation (max error in ulp of the correctly rounded
// result; KernelTests sweeps the same ranges):
//   exp      0.98 ulp on [−104, 89] (2M points). Cephes expf polynomial after a Cody–Waite reduction,
//            scaled by 2^n so that subnormal results round once (`scaled(_:byPowerOfTwo:)`). +inf above 88.7228,
//            +0 below −103.97 (where the true value rounds to 0), NaN → NaN.
//   log      0.72 ulp over every binade, subnormals included (2048 points per binade). Cephes logf
//            (mantissa in [√½, √2), degree-8 polynomial); subnormals are scaled by 2^23 first.
//            log 0 = −inf, log x<0 = NaN, log inf = inf, NaN → NaN.
//   softplus 1.56 ulp on [−120, 120]: max(x,0) + log1p(exp(−|x|)), no overflow for large x, no
//            underflow to 0 for large −x; log1p of u ∈ [0, 1] is Cephes' polynomial on u itself (no
//            rounding of 1 + u, no division): 1.36 ulp.
//   sigmoid  2.31 ulp on [−120, 120]: 1/(1+e) for x ≥ 0, e/(1+e) for x < 0, e = exp(−|x|); a true IEEE
//            division, never an approximate reciprocal (an approximate one turned σ' into NaN in
//            jax#777). σ(100) = 1 and σ(−100) = 3.7e-44, so σ·(1−σ) is 0 and 3.7e-44, never NaN.
//   tanh     1.28 ulp on [−12, 12]: Cephes tanhf, odd polynomial below |x| = 0.625, 1 − 2/(e^{2|x|}+1)
//            above (±1 past ~9), ±0 → ±0.
// Everything else the IR needs (abs, relu, sqrt, division, max) is exact in IEEE arithmetic.
// Polynomials are evaluated in Horner form with fused multiply-adds (one rounding per step).

/// Lane-wise elementary functions on SIMD16<Float>.
enum VectorMath {
    typealias V = SIMD16<Float>
    typealias U = SIMD16<UInt32>

    @_transparent static func bits(_ v: V) -> U { unsafeBitCast(v, to: U.self) }
    @_transparent static func float(_ u: U) -> V { unsafeBitCast(u, to: V.self) }

    /// 2^n for integral n in [−126, 127] given as a Float: 1.5·2^23 + n has n in its low mantissa bits.
    @_transparent static func powerOfTwo(_ n: V) -> V {
        let shifted = bits(n + V(repeating: 12_582_912)) &- U(repeating: 0x4B40_0000)
        return float((shifted &+ U(repeating: 127)) &<< U(repeating: 23))
    }

    @_transparent static func exp(_ x: V) -> V {
        // Clamped to [−104, 88.7228]; NaN passes both clamps (each compare is false for it).
        let high = x.replacing(with: 88.722_839_355_468_75, where: x .> 88.722_839_355_468_75)
        let xc = high.replacing(with: -104, where: high .< -104)
        let n = (xc * 1.442_695_040_888_963_4).rounded(.toNearestOrEven)
        var r = xc - n * 0.693_359_375
        r = r - n * -2.121_944_40e-4
        let z = r * r
        var y = V(repeating: 1.987_569_150_0e-4)
        y = V(repeating: 1.398_199_950_7e-3).addingProduct(y, r)
        y = V(repeating: 8.333_451_907_3e-3).addingProduct(y, r)
        y = V(repeating: 4.166_579_589_4e-2).addingProduct(y, r)
        y = V(repeating: 1.666_666_545_9e-1).addingProduct(y, r)
        y = V(repeating: 5.000_000_120_1e-1).addingProduct(y, r)
        y = (y * z + r) + 1
        var result = scaled(y, byPowerOfTwo: n)
        result = result.replacing(with: x, where: x .!= x)
        return result
    }

    /// y·2^n rounded once, for y ∈ [0.7, 1.42] and integral n ∈ [−150, 128] (NaN n: garbage). With a = n
    /// clamped to [−125, 127], y·2^a is normal, so adding a to y's exponent field is exact; the one
    /// multiplication by 2^(n−a), n − a ∈ [−25, 1], rounds (a subnormal result, overflow) once.
    @_transparent static func scaled(_ y: V, byPowerOfTwo n: V) -> V {
        let low = n.replacing(with: -125, where: n .< -125)
        let a = low.replacing(with: 127, where: low .> 127)
        // a + 1.5·2^23 has a in its low mantissa bits, as a two's complement integer.
        let exponent = (bits(a + V(repeating: 12_582_912)) &- U(repeating: 0x4B40_0000)) &<< U(repeating: 23)
        return float(bits(y) &+ exponent) * powerOfTwo(n - a)
    }

    @_transparent static func log(_ x: V) -> V {
        let subnormal = x .< 1.175_494_35e-38
        let scaled = x.replacing(with: x * 8_388_608, where: subnormal)
        let b = bits(scaled)
        // Exponent as a Float without an int→float conversion: 2^23 + e has e in its mantissa.
        var e = float((b &>> U(repeating: 23)) | U(repeating: 0x4B00_0000)) - 8_388_608 - 126
        e = e.replacing(with: e - 23, where: subnormal)
        var m = float((b & U(repeating: 0x807F_FFFF)) | U(repeating: 0x3F00_0000))   // [0.5, 1)
        let low = m .< 0.707_106_781_186_547_524
        e = e.replacing(with: e - 1, where: low)
        m = m.replacing(with: m + m - 1, where: low).replacing(with: m - 1, where: .!low)
        var result = logOfScaled(m, exponentLow: e * -2.121_944_40e-4, exponentHigh: e * 0.693_359_375)
        result = result.replacing(with: -.infinity, where: x .== 0)
        result = result.replacing(with: .infinity, where: x .== .infinity)
        result = result.replacing(with: .nan, where: x .< 0 .| x .!= x)
        return result
    }

    /// log(1 + u) for u ∈ [0, 1] (the softplus tail, u = exp(−|x|)): Cephes' log polynomial applied to
    /// u itself, with no rounding of 1 + u and no division. 1 + u = 2^e·(1 + m) with e = 0, m = u for
    /// u < √2 − 1, and e = 1, m = (u − 1)/2 ∈ [−0.29, 0] above (exact for u ≥ ½ by Sterbenz, one rounding
    /// of at most 2^−25 between √2 − 1 and ½); m stays in the polynomial's range [√½ − 1, √2 − 1].
    @_transparent static func log1pUnit(_ u: V) -> V {
        let upper = u .>= 0.414_213_562_373_095_05
        let m = u.replacing(with: (u - 1) * 0.5, where: upper)
        // e·c for e ∈ {0, 1} is c or a zero with c's sign: selected, not multiplied.
        return logOfScaled(m, exponentLow: V(repeating: -0.0).replacing(with: -2.121_944_40e-4, where: upper),
                           exponentHigh: V(repeating: 0).replacing(with: 0.693_359_375, where: upper))
    }

    /// log(2^e·(1 + m)) for m ∈ [√½ − 1, √2 − 1]: Cephes logf's polynomial in m, with e·ln 2 given as
    /// two parts (e·−2.12e-4 and e·0.693359375) so it adds without rounding. Shared by `log` and
    /// `log1pUnit` (whose e ∈ {0, 1} selects the parts instead of multiplying).
    @_transparent static func logOfScaled(_ m: V, exponentLow: V, exponentHigh: V) -> V {
        let z = m * m
        var y = V(repeating: 7.037_683_629_2e-2)
        y = V(repeating: -1.151_461_031_0e-1).addingProduct(y, m)
        y = V(repeating: 1.167_699_874_0e-1).addingProduct(y, m)
        y = V(repeating: -1.242_014_084_6e-1).addingProduct(y, m)
        y = V(repeating: 1.424_932_278_7e-1).addingProduct(y, m)
        y = V(repeating: -1.666_805_766_5e-1).addingProduct(y, m)
        y = V(repeating: 2.000_071_476_5e-1).addingProduct(y, m)
        y = V(repeating: -2.499_999_399_3e-1).addingProduct(y, m)
        y = V(repeating: 3.333_333_117_4e-1).addingProduct(y, m)
        y = y * m * z
        y = y + exponentLow
        y = y - z * 0.5
        return (m + y) + exponentHigh
    }

    @_transparent static func softplus(_ x: V) -> V {
        let positive = V(repeating: 0).replacing(with: x, where: x .> 0)
        return positive + log1pUnit(exp(-abs(x)))
    }

    @_transparent static func sigmoid(_ x: V) -> V { sigmoid(x, exp(-abs(x))) }

    /// σ(x) given e = exp(−|x|).
    @_transparent static func sigmoid(_ x: V, _ e: V) -> V {
        V(repeating: 1).replacing(with: e, where: x .< 0) / (e + 1)   // one division
    }

    /// softplus(x) and σ(x) = softplus'(x) with one exp (the Bernoulli likelihood and its gradient);
    /// the same operations as the two functions apart, so the same bits.
    @_transparent static func softplusAndSigmoid(_ x: V) -> (V, V) {
        let e = exp(-abs(x))
        return (V(repeating: 0).replacing(with: x, where: x .> 0) + log1pUnit(e), sigmoid(x, e))
    }

    @_transparent static func tanh(_ x: V) -> V {
        let a = abs(x)
        let s = x * x
        var p = V(repeating: -5.704_988_727_45e-3)
        p = V(repeating: 2.063_908_879_54e-2).addingProduct(p, s)
        p = V(repeating: -5.373_971_555_31e-2).addingProduct(p, s)
        p = V(repeating: 1.333_144_220_36e-1).addingProduct(p, s)
        p = V(repeating: -3.333_328_194_22e-1).addingProduct(p, s)
        let small = p * s * x + x
        let large = 1 - 2 / (exp(a + a) + 1)
        let signed = large.replacing(with: -large, where: x .< 0)
        return signed.replacing(with: small, where: a .< 0.625).replacing(with: x, where: x .== 0)   // ±0 → ±0
    }

    /// IEEE square root (vsqrtps). The stdlib's SIMD squareRoot goes lane by lane through libm's sqrtf
    /// (with its errno branch for negative input); sending negative lanes to NaN first — what sqrt gives
    /// them anyway — lets the compiler see there is no error case and emit the vector instruction.
    @_transparent static func sqrt(_ x: V) -> V {
        var r = V()
        for i in 0..<16 { r[i] = (x[i] < 0 ? Float.nan : x[i]).squareRoot() }
        return r
    }

    /// Σ of the lanes as a tree of halves (a fixed order, so the same bits every time).
    @_transparent static func sum(_ x: V) -> Float {
        let s8 = x.lowHalf + x.highHalf
        let s4 = s8.lowHalf + s8.highHalf
        let s2 = s4.lowHalf + s4.highHalf
        return s2[0] + s2[1]
    }

    @_transparent static func abs(_ x: V) -> V { float(bits(x) & U(repeating: 0x7FFF_FFFF)) }

    /// x > 0 ? x : 0 (NaN → 0, as the scalar definition `x > 0 ? x : 0`).
    @_transparent static func relu(_ x: V) -> V { V(repeating: 0).replacing(with: x, where: x .> 0) }

    // MARK: Ops of the IR

    /// One unary op of the IR on a vector. Ops with no vector form (the special functions) are
    /// evaluated lane by lane in Double, as the scalar evaluator does.
    static func unary(_ op: Op, _ x: V) -> V {
        if let f = VectorFunctions.unary(op) { return f.apply(x) }
        var y = V()
        for i in 0..<16 { y[i] = scalarSpecial(op, x[i]) }
        return y
    }

    static func scalarSpecial(_ op: Op, _ x: Float) -> Float {
        switch op {
        case .logGamma: return Float(SpecialFunctions.logGamma(Double(x)))
        case .digamma: return Float(SpecialFunctions.digamma(Double(x)))
        case .trigamma: return Float(SpecialFunctions.trigamma(Double(x)))
        case .cbLogNormalizer: return Float(SpecialFunctions.cbLogNormalizer(Double(x)))
        case .cbLogNormalizerSlope: return Float(SpecialFunctions.cbLogNormalizerSlope(Double(x)))
        default: preconditionFailure("\(op.mnemonic) is not a special function")
        }
    }

    /// One binary op of the IR on vectors.
    static func binary(_ op: Op, _ a: V, _ b: V) -> V { VectorFunctions.binary(op).apply(a, b) }

    // MARK: Arrays

    /// Whether every one of n floats is finite: x·0 is 0 for finite x and NaN for ±inf and NaN, summed in
    /// 16 lanes (a scalar sum is one long dependency chain the compiler may not reorder: ~16× slower).
    /// Whether every x² is finite (so every x is, and Adam's second moment will be): a NaN, an
    /// infinity or |x| > 1.8e19 makes x²·0 NaN.
    static func allSquaresFinite(_ p: UnsafePointer<Float>, _ n: Int) -> Bool {
        var acc = V()
        var i = 0
        while i + 16 <= n { let x = load(p + i); acc += x * x * 0; i += 16 }
        if i < n { let x = loadPartial(p + i, n - i); acc += x * x * 0 }
        return !sum(acc).isNaN
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }

    @inline(__always) static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
    }

    /// The first `count` (< 16) values at p, the other lanes 0.
    @inline(__always) static func loadPartial(_ p: UnsafePointer<Float>, _ count: Int) -> V {
        var v = V()
        for i in 0..<count { v[i] = p[i] }
        return v
    }

    @inline(__always) static func storePartial(_ v: V, _ p: UnsafeMutablePointer<Float>, _ count: Int) {
        for i in 0..<count { p[i] = v[i] }
    }

    /// y[i] = F(x[i]) for i < n, whole vectors and one partial vector for the tail. Generic over the
    /// function's type rather than taking a closure: the compiler specialises a generic reliably, while
    /// a closure argument was left as an indirect call per vector (1.5× slower, measured).
    @inline(__always) static func map<F: VectorFunction>(_: F.Type, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                                         _ n: Int) {
        var i = 0
        while i + 16 <= n { store(F.apply(load(x + i)), y + i); i += 16 }
        if i < n { storePartial(F.apply(loadPartial(x + i, n - i)), y + i, n - i) }
    }

    /// An IR unary op over an array: the plain interpreter's loop, and the fused kernels' (with n a
    /// whole number of vectors). One case per op so each loop is specialised for its function.
    static func apply(_ op: Op, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        typealias F = VectorFunctions
        switch op {
        case .negate: map(F.Negate.self, x, y, n)
        case .exp: map(F.Exp.self, x, y, n)
        case .log: map(F.Log.self, x, y, n)
        case .square: map(F.Square.self, x, y, n)
        case .sqrt: map(F.Sqrt.self, x, y, n)
        case .abs: map(F.Abs.self, x, y, n)
        case .relu: map(F.Relu.self, x, y, n)
        case .sigmoid: map(F.Sigmoid.self, x, y, n)
        case .tanh: map(F.Tanh.self, x, y, n)
        case .softplus: map(F.Softplus.self, x, y, n)
        case .positiveStep: map(F.Step.self, x, y, n)
        case .sign: map(F.Sign.self, x, y, n)
        default: for i in 0..<n { y[i] = scalarSpecial(op, x[i]) }
        }
    }

    /// y = a ∘ b over n floats (whole vectors past n may be read and written: registers only).
    @inline(__always) static func map2<F: VectorFunction2>(_: F.Type, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                                           _ y: UnsafeMutablePointer<Float>, vectors: Int) {
        for v in 0..<vectors { store(F.apply(load(a + 16 * v), load(b + 16 * v)), y + 16 * v) }
    }

    /// An IR binary op over whole vectors of registers (the fused kernels).
    static func apply(_ op: Op, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                      vectors: Int) {
        typealias F = VectorFunctions
        switch op {
        case .add: map2(F.Add.self, a, b, y, vectors: vectors)
        case .subtract: map2(F.Subtract.self, a, b, y, vectors: vectors)
        case .multiply: map2(F.Multiply.self, a, b, y, vectors: vectors)
        case .divide: map2(F.Divide.self, a, b, y, vectors: vectors)
        case .maximum: map2(F.Maximum.self, a, b, y, vectors: vectors)
        default: preconditionFailure("\(op.mnemonic) is not binary")
        }
    }
}

/// A lane-wise function of one vector, as a type (see `VectorMath.map`).
protocol VectorFunction {
    static func apply(_ x: SIMD16<Float>) -> SIMD16<Float>
}

/// A lane-wise function of two vectors, as a type.
protocol VectorFunction2 {
    static func apply(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float>
}

/// The IR's elementwise ops as function types.
enum VectorFunctions {
    typealias V = SIMD16<Float>
    enum Negate: VectorFunction { @_transparent static func apply(_ x: V) -> V { -x } }
    enum Exp: VectorFunction { @_transparent static func apply(_ x: V) -> V { VectorMath.exp(x) } }
    enum Log: VectorFunction { @_transparent static func apply(_ x: V) -> V { VectorMath.log(x) } }
    enum Square: VectorFunction { @_transparent static func apply(_ x: V) -> V { x * x } }
    enum Sqrt: VectorFunction { @_transparent static func apply(_ x: V) -> V { VectorMath.sqrt(x) } }
    enum Abs: VectorFunction { @_transparent static func apply(_ x: V) -> V { VectorMath.abs(x) } }
    enum Relu: VectorFunction { @_transparent static func apply(_ x: V) -> V { VectorMath.relu(x) } }
    enum Sigmoid: VectorFunction { @_transparent static func apply(_ x: V) -> V { VectorMath.sigmoid(x) } }
    enum Tanh: VectorFunction { @_transparent static func apply(_ x: V) -> V { VectorMath.tanh(x) } }
    enum Softplus: VectorFunction { @_transparent static func apply(_ x: V) -> V { VectorMath.softplus(x) } }
    enum Step: VectorFunction { @_transparent static func apply(_ x: V) -> V { V(repeating: 0).replacing(with: 1, where: x .> 0) } }
    enum Sign: VectorFunction {
        @_transparent static func apply(_ x: V) -> V {
            V(repeating: 0).replacing(with: 1, where: x .> 0).replacing(with: -1, where: x .< 0)
        }
    }

    enum Add: VectorFunction2 { @_transparent static func apply(_ a: V, _ b: V) -> V { a + b } }
    enum Subtract: VectorFunction2 { @_transparent static func apply(_ a: V, _ b: V) -> V { a - b } }
    enum Multiply: VectorFunction2 { @_transparent static func apply(_ a: V, _ b: V) -> V { a * b } }
    enum Divide: VectorFunction2 { @_transparent static func apply(_ a: V, _ b: V) -> V { a / b } }
    /// Swift.max(a, b) lane by lane: `b >= a ? b : a`.
    enum Maximum: VectorFunction2 { @_transparent static func apply(_ a: V, _ b: V) -> V { a.replacing(with: b, where: b .>= a) } }

    /// The function type of a unary op, nil for the special functions (no vector form).
    static func unary(_ op: Op) -> (any VectorFunction.Type)? {
        switch op {
        case .negate: return Negate.self
        case .exp: return Exp.self
        case .log: return Log.self
        case .square: return Square.self
        case .sqrt: return Sqrt.self
        case .abs: return Abs.self
        case .relu: return Relu.self
        case .sigmoid: return Sigmoid.self
        case .tanh: return Tanh.self
        case .softplus: return Softplus.self
        case .positiveStep: return Step.self
        case .sign: return Sign.self
        default: return nil
        }
    }

    static func binary(_ op: Op) -> any VectorFunction2.Type {
        switch op {
        case .add: return Add.self
        case .subtract: return Subtract.self
        case .multiply: return Multiply.self
        case .divide: return Divide.self
        case .maximum: return Maximum.self
        default: preconditionFailure("\(op.mnemonic) is not binary")
        }
    }
}
