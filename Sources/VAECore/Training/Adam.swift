import Foundation

/// Adam (Kingma & Ba) with PyTorch's formula, fused: one pass over parameter, gradient and both moments.
/// PyTorch writes the step p ← p − (lr/(1−β1ᵗ)) · m / (√v/√(1−β2ᵗ) + ε); multiplying the fraction's
/// top and bottom by √(1−β2ᵗ) gives the same value with one division instead of two:
///
///     p ← p − (lr·√(1−β2ᵗ)/(1−β1ᵗ)) · m / (√v + ε·√(1−β2ᵗ))
///
/// with both bracketed constants computed in Double and rounded once per step. It equals PyTorch's
/// formula up to float rounding (PyTorch's own foreach and fused variants round differently from its
/// loop too; a test holds one update to a few ulp of the textbook formula in Double).
///
/// The division stays a true division. Over the mnist model's 652,824 parameters on one Zen 4 thread
/// the pass took 218 µs, and 182 µs with the square root and the division both taken out: the seven
/// streams and the moments cost more than the divider. A reciprocal from FMAs (the guess
/// 0x7EF311C7 − bits(d), three Newton steps: 1.46 ulp, and the true quotient for lanes outside the
/// guess's range) took 281 µs: Zen 4 runs one 512-bit FMA per cycle, and six of them cost more than
/// the vdivps they replace.
///
/// The pass runs on SIMD16 vectors with the scalar tail's operations in the same order (lane by lane,
/// no fused multiply-add), so it gives the same bits as the scalar loop. The parameters are cut into
/// fixed pieces of `pieceSize` values that the threads share (`threads`, default 1); every value is
/// updated by one piece whatever the thread count, so the result does not depend on it.
public final class Adam {
    public let spec: OptimizerSpec
    public private(set) var step = 0
    /// Threads for the update pass (the pass streams ~7 floats per parameter, so on a large model it is
    /// bound by memory bandwidth and two cores help).
    public var threads = 1
    let first: ParameterStore
    let second: ParameterStore

    /// Values per piece of the update (64 KiB of each array). With the batch prefetch beside it on two
    /// threads, 12K to 32K took the same time (fastest of 3,000 updates: 145–150 µs); 4K took 158 µs
    /// or more (four times as many claims of the shared counter).
    static let pieceSize = 16_384

    /// (tensor, first value, count) of every piece.
    private var pieces: [(tensor: Int, start: Int, count: Int)] = []
    /// The current update's operands, read by the pieces.
    private var parameters: ParameterStore?
    private var gradients: [UnsafeMutablePointer<Float>] = []
    private var constants = Constants(b1: 0, b2: 0, stepSize: 0, epsilon: 0)

    /// One step's numbers: the moments' decay rates, lr·√(1−β2ᵗ)/(1−β1ᵗ) and ε·√(1−β2ᵗ).
    struct Constants {
        var b1: Float, b2: Float, stepSize: Float, epsilon: Float

        static func of(_ spec: OptimizerSpec, step: Int) -> Constants {
            let correction1 = 1 - Foundation.pow(spec.beta1, Double(step))
            let rootCorrection2 = (1 - Foundation.pow(spec.beta2, Double(step))).squareRoot()
            return Constants(b1: Float(spec.beta1), b2: Float(spec.beta2), stepSize: Float(spec.learningRate * rootCorrection2 / correction1),
                             epsilon: Float(spec.epsilon * rootCorrection2))
        }
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

    /// Work that shares the update's parallel section: independent tasks (they must not touch the
    /// parameters, gradients or moments) that the first free threads claim before the update's pieces.
    /// The other threads start on the pieces meanwhile, and a long task never ends the section alone.
    /// Made once and passed to every `update` that should run it.
    public final class SideTasks {
        public let count: Int
        let body: (_ task: Int) -> Void

        public init(count: Int, body: @escaping (_ task: Int) -> Void) {
            self.count = count
            self.body = body
        }
    }

    /// The section's job without side tasks, and with the latest side tasks (reused while they stay).
    private var plainJob: WorkerPool.Job?
    private var sideJob: (side: SideTasks, job: WorkerPool.Job)?

    /// One Adam step of `parameters` along `gradients`, with `side`'s tasks run in the same section.
    public func update(parameters: ParameterStore, gradients: [UnsafeMutablePointer<Float>], alongside side: SideTasks? = nil) {
        step += 1
        constants = Constants.of(spec, step: step)
        self.parameters = parameters
        self.gradients = gradients
        let sideCount = side?.count ?? 0
        if threads > 1 && sideCount + pieces.count > 1 {
            WorkerPool.run(job(alongside: side), threads: threads)
        } else {
            for task in 0..<sideCount { side!.body(task) }
            for piece in pieces.indices { update(piece: piece) }
        }
        self.parameters = nil
        self.gradients = []
    }

    private func job(alongside side: SideTasks?) -> WorkerPool.Job {
        guard let side else {
            if plainJob == nil {
                plainJob = WorkerPool.Job(count: pieces.count) { [unowned self] piece, _ in self.update(piece: piece) }
            }
            return plainJob!
        }
        if let cached = sideJob, cached.side === side { return cached.job }
        let job = WorkerPool.Job(count: side.count + pieces.count) { [unowned self] task, _ in
            if task < side.count { side.body(task) } else { self.update(piece: task - side.count) }
        }
        sideJob = (side, job)
        return job
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
        let stepSize = V(repeating: c.stepSize), epsilon = V(repeating: c.epsilon)
        var i = 0
        while i + 16 <= n {
            let gi = VectorMath.load(g + i)
            let mi = b1 * VectorMath.load(m + i) + a1 * gi
            let vi = b2 * VectorMath.load(v + i) + a2 * gi * gi
            VectorMath.store(mi, m + i)
            VectorMath.store(vi, v + i)
            VectorMath.store(VectorMath.load(p + i) - stepSize * mi / (VectorMath.sqrt(vi) + epsilon), p + i)
            i += 16
        }
        while i < n {
            let gi = g[i]
            let mi = c.b1 * m[i] + (1 - c.b1) * gi
            let vi = c.b2 * v[i] + (1 - c.b2) * gi * gi
            m[i] = mi
            v[i] = vi
            p[i] -= c.stepSize * mi / (vi.squareRoot() + c.epsilon)
            i += 1
        }
    }

    /// Moments and step, for checkpoints that resume exactly.
    public var state: (step: Int, first: ParameterStore, second: ParameterStore) { (step, first, second) }
    public func restore(step: Int) { self.step = step }
}
