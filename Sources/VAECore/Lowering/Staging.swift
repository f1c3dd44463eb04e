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
/// small kernels after dy·W leaves a core idle, measured no faster: those kernels are short.) Small
/// fused kernels whose results only other such kernels read (the loss and its terms summed over the
/// batch) wait for the next pair's stage and run beside its products, in row chunks, instead of in
/// stages of their own on one thread.
///
/// Epilogues: a fused kernel that reads the result of one product of the stage before it (and
/// nothing else that stage makes) runs as that product's epilogue, on the thread that computed the
/// result, while it is in that core's cache: after each column piece of a split product, over the
/// piece's columns (the bias and the activation after a dense layer; only kernels without per-row
/// sums, whose rows are long enough to be cut by columns), or after a whole product of a pair.
struct Staging: Sendable {
    struct Stage: Sendable {
        var kernels: [Int]
        /// Cut each kernel into tasks for all threads (only for a kernel alone in its stage).
        var split: Bool
        /// Fused kernels of a pair's stage that run in their row chunks, claimed by whichever thread
        /// finishes its product first (see `filler`).
        var chunked: Set<Int> = []
        /// Fused kernels run as epilogues of products of this stage: (product, fused kernel).
        var epilogues: [(product: Int, kernel: Int)] = []

        func epilogue(of product: Int) -> Int? { epilogues.first { $0.product == product }?.kernel }
    }

    var stages: [Stage]

    /// Products of at least this many flops are paired or split (≈ 10 µs of one core's work).
    static let parallelFlops = 1_500_000
    /// Fused kernels over at least this many elements are split, and such a kernel is not run as the
    /// epilogue of one product of a pair (it would make that core's side of the pair the longer one).
    /// It was 64K: the [128, 400] kernel after dy·W₄ in the mnist step (ReLU mask and bias gradient) then
    /// ran on one thread after dy·W₄, 11.5 µs, while Σ dy⊗h beside it took as long as dy·W₄ alone; split
    /// in a stage of its own it takes 9 µs, and the pair's stage minima went 727 → 704 µs (means
    /// 745 → 717; same bits). [128, 20] kernels (2,560 values) still run on one thread.
    static let parallelElements = 32_768
    /// A fused kernel without column sums, alone in its stage, is cut into ranges of rows from this many
    /// elements on (its results do not depend on the cut: each row is computed by itself). The mnist
    /// step's [B,20] reparameterisation and KL kernel (2,560 values, one row chunk) ran on one thread
    /// for 8 µs while the other waited; in two ranges its stage takes 5 µs (minima 8.0 → 4.9, means
    /// 8.8 → 5.8; same bits).
    static let rowSplitElements = 1_024

    init(_ program: KernelProgram, batch: Int, threads: Int) {
        let kernels = program.kernels
        guard threads > 1 else {
            stages = kernels.indices.map { Stage(kernels: [$0], split: false) }
            return
        }
        let producer = program.producers()
        var consumers = [Set<Int>](repeating: [], count: kernels.count)
        for (c, kernel) in kernels.enumerated() {
            for v in kernel.reads { if let p = producer[v] { consumers[p].insert(c) } }
        }
        var stageOf = [Int?](repeating: nil, count: kernels.count)
        func flops(_ k: Int) -> Int { kernels[k].flops(program.graph, batch: batch) }
        /// Every value the kernel reads is made by an earlier stage (or is a leaf).
        func ready(_ k: Int) -> Bool { kernels[k].reads.allSatisfy { v in producer[v].map { stageOf[$0] != nil } ?? true } }
        // Small fused kernels read only by other such kernels (the step's loss sums and scalars) wait to
        // fill the next pair's stage instead of each running alone on one thread while the others wait;
        // not one that reads a product's or an image kernel's result: it may run as their epilogue.
        var deferrable = [Bool](repeating: false, count: kernels.count)
        for k in kernels.indices.reversed() {
            guard case .fused(let f) = kernels[k], f.domain.elementCount(batch: batch) < Self.parallelElements,
                  kernels[k].reads.allSatisfy({ v in producer[v].map { if case .fused = kernels[$0] { true } else { false } } ?? true })
            else { continue }
            deferrable[k] = consumers[k].allSatisfy { deferrable[$0] }
        }
        var deferred: [Int] = []
        var remaining = Array(kernels.indices)
        var stages: [Stage] = []
        while let first = remaining.first {
            remaining.removeFirst()
            if deferrable[first] {
                deferred.append(first)
                continue
            }
            var members = [first]
            var chunked: Set<Int> = []
            if case .matrix = kernels[first], flops(first) >= Self.parallelFlops {
                let size = flops(first)
                let candidates = remaining.filter { j in
                    guard case .matrix = kernels[j], flops(j) * 3 >= size, flops(j) <= size * 3 else { return false }
                    return ready(j)
                }
                // Prefer a partner read by the same kernel (the two data gradients a hidden layer sums):
                // their consumer can then fill the next stage beside the weight gradients (`filler`).
                let partner = candidates.first { !consumers[first].isDisjoint(with: consumers[$0]) } ?? candidates.first
                if let partner {
                    members.append(partner)
                    remaining.removeAll { $0 == partner }
                    if let filler = Self.filler(in: remaining, kernels, ready: ready) {
                        members.append(filler)
                        chunked.insert(filler)
                        remaining.removeAll { $0 == filler }
                    }
                    let fillers = deferred.filter(ready)
                    members += fillers
                    chunked.formUnion(fillers)
                    deferred.removeAll { fillers.contains($0) }
                }
            }
            for k in members { stageOf[k] = stages.count }
            var split = false
            if members.count == 1 {
                switch kernels[first] {
                case .matrix: split = flops(first) >= Self.parallelFlops
                case .standalone: split = true   // an image kernel cuts itself into tasks, by examples
                case .fused(let f):
                    let elements = f.domain.elementCount(batch: batch)
                    split = elements >= Self.parallelElements
                        || (f.columnSums.isEmpty && f.domain.batched && elements >= Self.rowSplitElements)
                }
            }
            stages.append(Stage(kernels: members, split: split, chunked: chunked))
        }
        // Deferred kernels no pair's stage took run last, in order (each reads only earlier ones).
        for k in deferred {
            stageOf[k] = stages.count
            stages.append(Stage(kernels: [k], split: false))
        }

        var merged: [Stage] = []
        var index = 0
        while index < stages.count {
            var stage = stages[index]
            if index + 1 < stages.count,
               let attached = Self.epilogue(stages[index + 1], after: stage, at: index, program, producer, stageOf) {
                stage.epilogues.append(attached)
                index += 2
            } else {
                index += 1
            }
            merged.append(stage)
        }
        self.stages = merged
    }

    /// A fused kernel to run beside a pair of products, in row chunks claimed by whichever thread is
    /// free first: the next remaining kernel, if it is fused and reads only values of earlier stages.
    /// The pair's products seldom take equal times (one has an epilogue, or a different shape), and a
    /// small kernel alone in a stage runs on one thread while the other waits: in the mnist step the
    /// [B,400] kernel that sums the two heads' data gradients (19 µs on one core) otherwise ran after
    /// one of the small paired products.
    private static func filler(in remaining: [Int], _ kernels: [Kernel], ready: (Int) -> Bool) -> Int? {
        guard let next = remaining.first, case .fused = kernels[next], ready(next) else { return nil }
        return next
    }

    /// The (product, fused kernel) pair when `next` can run as an epilogue of a product of `stage`.
    private static func epilogue(_ next: Stage, after stage: Stage, at index: Int, _ program: KernelProgram,
                                 _ producer: [Int?], _ stageOf: [Int?]) -> (product: Int, kernel: Int)? {
        guard next.kernels.count == 1, case .fused(let f) = program.kernels[next.kernels[0]] else { return nil }
        let inStage = Set(stage.kernels)
        let sources = Set(f.inputs.compactMap { input in producer[input.value].flatMap { inStage.contains($0) ? $0 : nil } })
        guard sources.count == 1, let product = sources.first else { return nil }
        // Everything else it reads exists before the stage.
        for input in f.inputs where producer[input.value] != product {
            if let p = producer[input.value], let s = stageOf[p], s >= index { return nil }
        }
        if case .standalone(let image) = program.kernels[product] {
            // Run by the image kernel after each range of examples it computes (the bias and the
            // activation after a convolution): whole rows of its result, so no column sums.
            guard ImageKernels.acceptsEpilogue(image.op), f.columnSums.isEmpty,
                  f.domain == program.graph[image.node].shape else { return nil }
            return (product, next.kernels[0])
        }
        guard case .matrix(let m) = program.kernels[product] else { return nil }
        if stage.split {
            // Cut by the product's columns: the kernel's rows must be the product's rows.
            let fromProduct = f.inputs.filter { $0.value == m.node }
            guard m.op != .outerSum, f.rowSums.isEmpty, f.domain == program.graph[m.node].shape,
                  FusedKernel.blockRows(columns: f.domain.featureCount) == 1,
                  fromProduct.allSatisfy({ $0.mode == .full }) else { return nil }
        } else if next.split {
            return nil   // a kernel big enough to split is better split than run on one thread
        }
        return (product, next.kernels[0])
    }

    /// Stage index of every kernel.
    var stageOfKernel: [Int] {
        var result = [Int](repeating: 0, count: stages.reduce(0) { $0 + $1.kernels.count + $1.epilogues.count })
        for (s, stage) in stages.enumerated() {
            for k in stage.kernels { result[k] = s }
            for e in stage.epilogues { result[e.kernel] = s }
        }
        return result
    }
}
