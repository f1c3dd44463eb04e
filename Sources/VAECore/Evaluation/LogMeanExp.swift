import Foundation

/// log((1/K) Σ_k exp(a_k)) accumulated one term at a time in Double without overflow: the running sum
/// is kept relative to the largest term seen, and rescaled when a larger one arrives.
public struct LogMeanExp: Sendable {
    private var maximum = -Double.infinity
    private var sum = 0.0
    public private(set) var count = 0

    public init() {}

    public mutating func add(_ a: Double) {
        count += 1
        if maximum.isNaN { return }
        if a.isNaN { maximum = .nan; return }
        if a <= maximum {
            sum += Foundation.exp(a - maximum)
        } else {
            sum = (maximum == -.infinity ? 0 : sum * Foundation.exp(maximum - a)) + 1
            maximum = a
        }
    }

    public var value: Double {
        guard count > 0 else { return -.infinity }
        if maximum.isNaN { return .nan }
        if maximum == -.infinity { return -.infinity }
        return maximum + Foundation.log(sum) - Foundation.log(Double(count))
    }
}
