import Foundation

extension Prior {
    /// Where pictures centre their sweeps and how wide they make them: a normal prior's mean and
    /// standard deviation; for a mixture, 0 and 1 (its components are learned, so there is no one scale).
    public var pictureCentreAndSpread: (mean: Double, std: Double) {
        switch self {
        case .normal(let mean, let std): return (mean, std)
        case .mixture: return (0, 1)
        }
    }

    /// `count` draws of an m-dimensional z from the prior, row-major. A mixture picks a component by its
    /// learned weights (softmax of the logits), then draws from that component's Gaussian.
    public func draw(count: Int, dimensions m: Int, random: inout RandomSource, parameters: ParameterStore) -> [Float] {
        var z = [Float](repeating: 0, count: count * m)
        z.withUnsafeMutableBufferPointer { random.fillNormal($0.baseAddress!, count: $0.count) }
        switch self {
        case .normal(let mean, let std):
            return z.map { Float(mean) + Float(std) * $0 }
        case .mixture(let k):
            func values(_ name: String) -> [Float] { parameters.index(of: name).map { parameters.values($0) } ?? [] }
            let logits = (1...k).map { Double(values(Prior.mixtureNames($0).logit).first ?? 0) }
            let top = logits.max() ?? 0
            let weights = logits.map { Foundation.exp($0 - top) }
            let total = weights.reduce(0, +)
            for row in 0..<count {
                var u = Double(random.nextUniform()) * total, component = k
                for (index, w) in weights.enumerated() {
                    if u < w { component = index + 1; break }
                    u -= w
                }
                let names = Prior.mixtureNames(component)
                let mean = values(names.mean), logStd = values(names.logStd)
                for j in 0..<m where j < mean.count && j < logStd.count {
                    z[row * m + j] = mean[j] + Float(Foundation.exp(Double(logStd[j]))) * z[row * m + j]
                }
            }
            return z
        }
    }
}
