import Foundation

/// xoshiro256** seeded through SplitMix64: fast, and the same stream on every machine for a seed.
/// Its state is four words, so a checkpoint can save and restore it exactly.
public struct RandomSource: Sendable, Equatable {
    public private(set) var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var s = seed
        func splitMix() -> UInt64 {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    public init(state: [UInt64]) {
        self.state = (state[0], state[1], state[2], state[3])
    }

    public var stateWords: [UInt64] { [state.0, state.1, state.2, state.3] }

    public static func == (a: RandomSource, b: RandomSource) -> Bool { a.state == b.state }

    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = rotl(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotl(state.3, 45)
        return result
    }

    @inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform in [0, 1) with 24 bits.
    @inline(__always)
    public mutating func nextUniform() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Uniform in [0, n).
    public mutating func nextIndex(below n: Int) -> Int {
        precondition(n > 0)
        // Lemire's multiply-shift; the tiny bias is irrelevant for shuffling a data set.
        return Int((UInt64(UInt32(truncatingIfNeeded: next() >> 32)) &* UInt64(n)) >> 32)
    }

    /// Fills with standard normal draws: Box–Muller in Double, one pair of values per two words of the
    /// stream. Pair k takes the next two words a and b and gives r·cos θ and r·sin θ (rounded to Float;
    /// for an odd count the last sine is dropped), with r = √(−2 log u₁), u₁ = ((a >> 11) + 1)/(2⁵³ + 1)
    /// in (0, 1], θ = 2π·u₂, u₂ = (b >> 11)/2⁵³ in [0, 1), log, cos and sin being glibc's. The PyTorch and
    /// JAX exports draw the very same bits this way (`VaecRandom.normal`, with Python's math module, i.e.
    /// glibc), so every operation here is fixed: only the order the values are computed in is free.
    ///
    /// The sine and cosine are most of the time (mnist's batch, 2,560 draws, took 44 µs drawn a pair at
    /// a time; alone, 1,280 fresh angles' `sin` + `cos` take 31 µs, their `log` 6, the generator 2), and
    /// much of theirs is mispredicted branches: glibc takes one of three paths by the size of θ, then
    /// branches on the quadrant and the sign of the reduced angle, so random angles defeat the predictor
    /// (the same 1,280 angles timed again and again take 15 µs with `sincos`, fresh ones 27). So the
    /// pairs are drawn a chunk at a time, and their angles handed to glibc's `sincos` (one reduction for
    /// both) in increasing order, by a counting sort on u₂'s top bits: neighbours take the same paths.
    /// Each value is still the same function of the same argument, written where the draw order puts it.
    /// The 2,560 draws take 24.6 µs (release build, timed alone).
    public mutating func fillNormal(_ p: UnsafeMutablePointer<Float>, count: Int) {
        guard count > 0 else { return }
        let chunk = Swift.min(NormalChunk.pairs, (count + 1) / 2)
        withUnsafeTemporaryAllocation(of: Double.self, capacity: 3 * chunk) { doubles in
            withUnsafeTemporaryAllocation(of: UInt16.self, capacity: 2 * chunk + NormalChunk.buckets + 1) { shorts in
                var scratch = NormalChunk(doubles.baseAddress!, shorts.baseAddress!, capacity: chunk)
                var start = 0
                while start < count {
                    let written = Swift.min(2 * chunk, count - start)
                    scratch.fill(p + start, count: written, random: &self)
                    start += written
                }
            }
        }
    }

    /// A random permutation of 0..<n (Fisher–Yates).
    public mutating func permutation(_ n: Int) -> [Int] {
        var order = Array(0..<n)
        if n < 2 { return order }
        for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, nextIndex(below: i + 1)) }
        return order
    }
}

/// One chunk of `RandomSource.fillNormal`'s pairs, in scratch memory: drawn in stream order, the radii
/// computed in that order, the angles' sines and cosines in increasing order of angle.
private struct NormalChunk {
    /// Pairs per chunk: mnist's 1,280 in one, so all its angles are sorted together (2,560 draws:
    /// 25.2–25.5 µs in chunks of 512 or 1,024 pairs, 24.6 in one of 2,048; 48 KiB of Doubles on the stack).
    static let pairs = 2048
    /// Buckets of the counting sort, by u₂'s top bits (2,560 draws in one chunk: 25.8–25.9 µs with 64
    /// buckets, 25.2–25.3 with 256, 24.6–24.7 with 1,024, about one angle per bucket).
    static let bucketBits = 10
    static let buckets = 1 << bucketBits

    let radius: UnsafeMutablePointer<Double>
    /// θ until `sincos` replaces it by cos θ.
    let cosine: UnsafeMutablePointer<Double>
    let sine: UnsafeMutablePointer<Double>
    let bucket: UnsafeMutablePointer<UInt16>
    /// The pairs in increasing order of angle.
    let order: UnsafeMutablePointer<UInt16>
    /// Where each bucket's pairs start in `order` (one more entry than buckets).
    let bucketStart: UnsafeMutablePointer<UInt16>

    init(_ doubles: UnsafeMutablePointer<Double>, _ shorts: UnsafeMutablePointer<UInt16>, capacity: Int) {
        radius = doubles; cosine = doubles + capacity; sine = doubles + 2 * capacity
        bucket = shorts; order = shorts + capacity; bucketStart = shorts + 2 * capacity
    }

    /// Writes the next `count` draws (at most twice the capacity) to `p`.
    mutating func fill(_ p: UnsafeMutablePointer<Float>, count: Int, random: inout RandomSource) {
        let pairs = (count + 1) / 2
        bucketStart.update(repeating: 0, count: Self.buckets + 1)
        for k in 0..<pairs {
            radius[k] = (Double(random.next() >> 11) + 1) * (1.0 / 9_007_199_254_740_993.0)   // u₁ for now
            let b = random.next() >> 11
            let u2 = Double(b) * (1.0 / 9_007_199_254_740_992.0)
            cosine[k] = 2 * Double.pi * u2
            bucket[k] = UInt16(truncatingIfNeeded: b >> UInt64(53 - Self.bucketBits))
            bucketStart[Int(bucket[k]) + 1] &+= 1
        }
        for k in 0..<pairs { radius[k] = (-2 * Foundation.log(radius[k])).squareRoot() }
        for i in 0..<Self.buckets { bucketStart[i + 1] &+= bucketStart[i] }
        for k in 0..<pairs {
            let b = Int(bucket[k])
            order[Int(bucketStart[b])] = UInt16(truncatingIfNeeded: k)
            bucketStart[b] &+= 1
        }
        let sincos = SineAndCosine.function
        for j in 0..<pairs {
            let k = Int(order[j])
            sincos(cosine[k], sine + k, cosine + k)
        }
        for k in 0..<count / 2 {
            p[2 * k] = Float(radius[k] * cosine[k])
            p[2 * k + 1] = Float(radius[k] * sine[k])
        }
        if count % 2 == 1 { p[count - 1] = Float(radius[pairs - 1] * cosine[pairs - 1]) }
    }
}

/// sin and cos of one angle, as glibc's `sin` and `cos` give them, from its `sincos` where that has the
/// same bits: it reduces the angle once for both, 27 µs for 1,280 fresh angles against 31 for `sin` and
/// `cos`. glibc builds `sincos` from `sin`'s own source (s_sincos.c includes s_sin.c: the same
/// reduction and the same `do_sin` and `do_cos` on each path), and it was checked on this machine
/// (glibc 2.36, Zen 4) on 2·10⁸ angles drawn as `fillNormal` draws them, every angle of the first and
/// last 2²² steps of u₂, and 2²⁰ neighbours either side of the path thresholds 0.855469 and 2.426265
/// and of the multiples of π/4 up to 2π: no bit differed. Swift's Glibc module does not declare
/// `sincos` (<math.h> has it only under _GNU_SOURCE), so it is looked up by name, and used only if it
/// also agrees here with `sin` and `cos` on 4,096 such angles at first use (`NormalDrawTests` checks
/// 10⁶ more); otherwise `sin` and `cos` are called.
enum SineAndCosine {
    typealias Function = @convention(c) (Double, UnsafeMutablePointer<Double>, UnsafeMutablePointer<Double>) -> Void

    static let function: Function = glibcSincos ?? { x, sine, cosine in
        sine.pointee = Foundation.sin(x)
        cosine.pointee = Foundation.cos(x)
    }

    /// glibc's `sincos`, if found and it agrees with `sin` and `cos` on the check's angles (the angles
    /// 2π·b/2⁵³ of b = 0, 2⁵³ − 1 and 4,094 random b, as `fillNormal` draws them).
    static let glibcSincos: Function? = {
        #if canImport(Glibc)
        typealias Single = @convention(c) (Double) -> Double
        // `sin` and `cos` also by name: calls the optimiser could not fuse into a `sincos` call.
        guard let sincos = dlsym(nil, "sincos"), let sin = dlsym(nil, "sin"), let cos = dlsym(nil, "cos") else { return nil }
        let f = unsafeBitCast(sincos, to: Function.self)
        let (sine, cosine) = (unsafeBitCast(sin, to: Single.self), unsafeBitCast(cos, to: Single.self))
        var random = RandomSource(seed: 0x5EED_51C0)
        for i in 0..<4096 {
            let b = i < 2 ? UInt64(i) * ((1 << 53) - 1) : random.next() >> 11
            let x = 2 * Double.pi * (Double(b) * (1.0 / 9_007_199_254_740_992.0))
            var s = 0.0, c = 0.0
            f(x, &s, &c)
            guard s.bitPattern == sine(x).bitPattern, c.bitPattern == cosine(x).bitPattern else { return nil }
        }
        return f
        #else
        return nil
        #endif
    }()
}
