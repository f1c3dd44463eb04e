import Foundation

/// A summary of one value's elements: what `vaec grad --values` prints beside each IR line.
///
/// `min` and `max` skip NaNs but keep infinities (so an overflow shows as `max inf`); `mean` is over
/// the finite elements only, so one Inf does not hide what the rest look like. Sums run in Double.
public struct ValueStatistics: Equatable, Sendable {
    public var count = 0
    public var min = Float.nan
    public var max = Float.nan
    public var mean = Double.nan
    public var nanCount = 0
    public var infCount = 0

    public init(_ values: UnsafeBufferPointer<Float>) {
        count = values.count
        var lo = Float.infinity, hi = -Float.infinity, sum = 0.0, finite = 0
        for v in values {
            if v.isNaN { nanCount += 1; continue }
            lo = Swift.min(lo, v); hi = Swift.max(hi, v)
            if v.isInfinite { infCount += 1 } else { sum += Double(v); finite += 1 }
        }
        if nanCount < count { min = lo; max = hi }
        if finite > 0 { mean = sum / Double(finite) }
    }

    public init(_ values: [Float]) {
        self = values.withUnsafeBufferPointer { ValueStatistics($0) }
    }

    public var isFinite: Bool { nanCount == 0 && infCount == 0 }

    /// `min -1.25 max 3.5 mean 0.0312 nan 0 inf 0`, numbers in `%.4g`.
    public var summary: String {
        "min \(Self.number(Double(min))) max \(Self.number(Double(max))) mean \(Self.number(mean)) nan \(nanCount) inf \(infCount)"
    }

    static func number(_ v: Double) -> String {
        if v.isNaN { return "-" }
        if v.isInfinite { return v > 0 ? "inf" : "-inf" }
        return String(format: "%.4g", v)
    }
}
