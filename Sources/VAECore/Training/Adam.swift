import Foundation

/// Adam (Kingma & Ba) with PyTorch's arithmetic, fused: one pass over parameter, gradient and both
/// moments. p ← p − (lr/(1−β1ᵗ)) · m / (√v/√(1−β2ᵗ) + ε).
///
/// The pass runs on SIMD16 vectors with the scalar formula's operations in the scalar formula's order
/// (lane by lane, no fused multiply-add), so it gives the same bits as the scalar loop. The parameters
/// are cut into fixed pieces of `pieceSize` values that the threads share (`threads`, default 1); every
/// value is updated by one piece whatever the thread count, so the result does not depend on it.
public final class Adam {
    public let spec: OptimizerSpec
    public private(set) var step = 0
    /// Threads for the update pass (the pass streams ~7 floats per parameter, so on a large model it is
    /// bound by memory bandwidth and two cores help).
    public var threads = 1
    let first: ParameterStore
    let second: ParameterStore

    /// Values per piece of the update (64 KiB of each array).
    static let pieceSize = 16_384

    /// (tensor, first value, count) of every piece.
    private var pieces: [(tensor: Int, start: Int, count: Int)] = []
    private var job: WorkerPool.Job?
    /// The current update's operands, read by the pieces.
    private var parameters: ParameterStore?
    private var gradients: [UnsafeMutablePointer<Float>] = []
    private var constants = Constants(b1: 0, b2: 0, stepSize: 0, rootCorrection2: 0, eps: 0)

    struct Constants {
        var b1: Float, b2: Float, stepSize: Float, rootCorrection2: Float, eps: Float
    }

    public init(spec: OptimizerSpec, parameters: [ParameterSpec]) {
        self.spec = spec
        first = ParameterStore(specs: parameters)
        second = ParameterStore(specs: parameters)
        for (t, p) in parameters.enumerated() {
            for start in stride(from: 0, to: p.count, by: Self.pieceSize) {
                pieces.append((t, start, min(Self.pieceSize, p.count - start)))
            }
        }
    }

    public func update(parameters: ParameterStore, gradients: [UnsafeMutablePointer<Float>]) {
        step += 1
        let correction1 = 1 - Foundation.pow(spec.beta1, Double(step))
        let correction2 = 1 - Foundation.pow(spec.beta2, Double(step))
        constants = Constants(b1: Float(spec.beta1), b2: Float(spec.beta2), stepSize: Float(spec.learningRate / correction1),
                              rootCorrection2: Float(correction2.squareRoot()), eps: Float(spec.epsilon))
        self.parameters = parameters
        self.gradients = gradients
        if threads > 1 && pieces.count > 1 {
            if job == nil {
                job = WorkerPool.Job(count: pieces.count) { [unowned self] piece, _ in self.update(piece: piece) }
            }
            WorkerPool.run(job!, threads: threads)
        } else {
            for piece in pieces.indices { update(piece: piece) }
        }
        self.parameters = nil
        self.gradients = []
    }

    private func update(piece index: Int) {
        let piece = pieces[index]
        let p = parameters!.pointers[piece.tensor] + piece.start, g = gradients[piece.tensor] + piece.start
        let m = first.pointers[piece.tensor] + piece.start, v = second.pointers[piece.tensor] + piece.start
        Self.update(p, g, m, v, piece.count, constants)
    }

    @inline(__always)
    private static func update(_ p: UnsafeMutablePointer<Float>, _ g: UnsafeMutablePointer<Float>,
                               _ m: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>, _ n: Int, _ c: Constants) {
        typealias V = SIMD16<Float>
        let b1 = V(repeating: c.b1), b2 = V(repeating: c.b2)
        let a1 = V(repeating: 1 - c.b1), a2 = V(repeating: 1 - c.b2)
        let stepSize = V(repeating: c.stepSize), root = V(repeating: c.rootCorrection2), eps = V(repeating: c.eps)
        var i = 0
        while i + 16 <= n {
            let gi = VectorMath.load(g + i)
            let mi = b1 * VectorMath.load(m + i) + a1 * gi
            let vi = b2 * VectorMath.load(v + i) + a2 * gi * gi
            VectorMath.store(mi, m + i)
            VectorMath.store(vi, v + i)
            VectorMath.store(VectorMath.load(p + i) - stepSize * mi / (VectorMath.sqrt(vi) / root + eps), p + i)
            i += 16
        }
        while i < n {
            let gi = g[i]
            let mi = c.b1 * m[i] + (1 - c.b1) * gi
            let vi = c.b2 * v[i] + (1 - c.b2) * gi * gi
            m[i] = mi
            v[i] = vi
            p[i] -= c.stepSize * mi / (vi.squareRoot() / c.rootCorrection2 + c.eps)
            i += 1
        }
    }

    /// Moments and step, for checkpoints that resume exactly.
    public var state: (step: Int, first: ParameterStore, second: ParameterStore) { (step, first, second) }
    public func restore(step: Int) { self.step = step }
}
