/// The `stage` lowering pass: cuts the kernel sequence into stages for the threads.
///
/// A stage runs its kernels side by side and ends when all are done. With one thread every kernel is
/// its own stage, in order. With more, a product is paired with a later independent product of similar
/// size whose inputs already exist: in the backward pass of a dense layer the data gradient dy·W and
/// the weight gradient Σ dy⊗x are independent and equally large, and running them on one core each
/// costs neither a split nor a second packing of the shared operand (measured: the pair of 80-MFLOP
/// products of the mnist step takes 0.72 ms on two cores, one of them alone 0.72 ms on one). A kernel
/// alone in its stage is cut into tasks for all threads when it is large enough to pay for the
/// hand-over. (Running the weight gradients in the background instead, filling the time the chain of
/// small kernels after dy·W leaves a core idle, measured no faster: those kernels are short.)
struct Staging: Sendable {
    struct Stage: Sendable {
        var kernels: [Int]
        /// Cut each kernel into tasks for all threads (only for a kernel alone in its stage).
        var split: Bool
    }

    var stages: [Stage]

    /// Products of at least this many flops are paired or split (≈ 10 µs of one core's work).
    static let parallelFlops = 1_500_000
    /// Fused kernels over at least this many elements are split (smaller ones, e.g. [128, 400], ran
    /// slower split than on one thread: measured).
    static let parallelElements = 65_536

    init(_ program: KernelProgram, batch: Int, threads: Int) {
        let kernels = program.kernels
        guard threads > 1 else {
            stages = kernels.indices.map { Stage(kernels: [$0], split: false) }
            return
        }
        let producer = program.producers()
        var stageOf = [Int?](repeating: nil, count: kernels.count)
        func flops(_ k: Int) -> Int { kernels[k].flops(program.graph, batch: batch) }
        var remaining = Array(kernels.indices)
        var stages: [Stage] = []
        while let first = remaining.first {
            remaining.removeFirst()
            var members = [first]
            if case .matrix = kernels[first], flops(first) >= Self.parallelFlops {
                let size = flops(first)
                let partner = remaining.first { j in
                    guard case .matrix = kernels[j], flops(j) * 3 >= size, flops(j) <= size * 3 else { return false }
                    return kernels[j].reads.allSatisfy { v in producer[v].map { stageOf[$0] != nil } ?? true }
                }
                if let partner {
                    members.append(partner)
                    remaining.removeAll { $0 == partner }
                }
            }
            for k in members { stageOf[k] = stages.count }
            var split = false
            if members.count == 1 {
                switch kernels[first] {
                case .matrix: split = flops(first) >= Self.parallelFlops
                case .fused(let f): split = f.domain.elementCount(batch: batch) >= Self.parallelElements
                }
            }
            stages.append(Stage(kernels: members, split: split))
        }
        self.stages = stages
    }

    /// Stage index of every kernel.
    var stageOfKernel: [Int] {
        var result = [Int](repeating: 0, count: stages.reduce(0) { $0 + $1.kernels.count })
        for (s, stage) in stages.enumerated() { for k in stage.kernels { result[k] = s } }
        return result
    }
}
