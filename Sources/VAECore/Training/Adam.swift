import Foundation

/// Adam (Kingma & Ba) with PyTorch's arithmetic, fused: one pass over parameter, gradient and both
/// moments. p ← p − (lr/(1−β1ᵗ)) · m / (√v/√(1−β2ᵗ) + ε).
public final class Adam {
    public let spec: OptimizerSpec
    public private(set) var step = 0
    let first: ParameterStore
    let second: ParameterStore

    public init(spec: OptimizerSpec, parameters: [ParameterSpec]) {
        self.spec = spec
        first = ParameterStore(specs: parameters)
        second = ParameterStore(specs: parameters)
    }

    public func update(parameters: ParameterStore, gradients: [UnsafeMutablePointer<Float>]) {
        step += 1
        let b1 = Float(spec.beta1), b2 = Float(spec.beta2)
        let correction1 = 1 - Foundation.pow(spec.beta1, Double(step))
        let correction2 = 1 - Foundation.pow(spec.beta2, Double(step))
        let stepSize = Float(spec.learningRate / correction1)
        let rootCorrection2 = Float(correction2.squareRoot())
        let eps = Float(spec.epsilon)
        for index in parameters.specs.indices {
            let n = parameters.specs[index].count
            let p = parameters.pointers[index], g = gradients[index]
            let m = first.pointers[index], v = second.pointers[index]
            for i in 0..<n {
                let gi = g[i]
                let mi = b1 * m[i] + (1 - b1) * gi
                let vi = b2 * v[i] + (1 - b2) * gi * gi
                m[i] = mi
                v[i] = vi
                p[i] -= stepSize * mi / (vi.squareRoot() / rootCorrection2 + eps)
            }
        }
    }

    /// Moments and step, for checkpoints that resume exactly.
    public var state: (step: Int, first: ParameterStore, second: ParameterStore) { (step, first, second) }
    public func restore(step: Int) { self.step = step }
}
