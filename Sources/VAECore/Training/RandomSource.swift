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

    /// Fills with standard normal draws (Box–Muller in Double, two values per pair of uniforms).
    public mutating func fillNormal(_ p: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i < count {
            let u1 = (Double(next() >> 11) + 1) * (1.0 / 9_007_199_254_740_993.0)   // (0, 1]
            let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
            let r = (-2 * Foundation.log(u1)).squareRoot()
            let theta = 2 * Double.pi * u2
            p[i] = Float(r * Foundation.cos(theta))
            if i + 1 < count { p[i + 1] = Float(r * Foundation.sin(theta)) }
            i += 2
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
