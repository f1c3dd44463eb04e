/// The image kernels of the kernel program (convolutions, layout changes, the per-channel sum), bound
/// to memory: each kernel becomes one or more tasks that together compute its result.
enum ImageKernels {
    static func bind(_ kernel: StandaloneKernel, _ graph: Graph, batch: Int, pieces: Int,
                     pointer: (ValueID) -> UnsafeMutablePointer<Float>) -> [() -> Void] {
        let node = graph[kernel.node]
        let operands = kernel.operands.map { UnsafePointer(pointer($0)) }
        let out = pointer(kernel.node)
        return [{ ImageReference.evaluate(node, graph, batch: batch, operand: { operands[$0] }, result: out) }]
    }
}
