import Foundation

/// An `Executable` ready for evaluation: the model's parameters bound to a store (no copy), a buffer it
/// owns for each data-like leaf it reads (the input, the noise, a decoder's z), and the hypers set to
/// the values of the plain ELBO (β = 1, no GECO weight, zero capacity) for its batch size. The metrics
/// and the decoder outputs do not depend on β; setting it anyway keeps every leaf defined.
final class BoundExecutable {
    let executable: Executable
    private var leafBuffers: [Op: UnsafeMutablePointer<Float>] = [:]

    init(graph: Graph, outputs: [String], batch: Int, threads: Int, parameters: ParameterStore, leaves: [Op]) throws {
        for name in outputs where graph.output(name) == nil {
            throw VAECError.training("the graph has no output '\(name)' (was the program compiled by an older vaec?)")
        }
        let e = Executable(graph: graph, outputs: outputs, batch: batch, threads: threads)
        executable = e
        for (name, id) in e.leaves(where: { if case .parameter(let n) = $0 { n } else { nil } }) {
            guard let index = parameters.index(of: name) else {
                throw VAECError.training("the graph reads parameter '\(name)', which the parameters given do not have")
            }
            e.bind(id, to: parameters.pointers[index])
        }
        for leaf in leaves {
            guard let id = e.uses(leaf) else { continue }
            let count = max(1, graph[id].shape.elementCount(batch: batch))
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
            buffer.initialize(repeating: 0, count: count)
            e.adopt(buffer)
            e.bind(id, to: buffer)
            leafBuffers[leaf] = buffer
        }
        let hypers: [String: Float] = ["beta": 1, "1/batch": 1 / Float(batch), "batch": Float(batch),
                                       "recon_weight": 1, "capacity": 0]
        for (name, _) in e.leaves(where: { if case .hyper(let n) = $0 { n } else { nil } }) {
            e.setHyper(name, hypers[name] ?? 0)
        }
    }

    var batch: Int { executable.batch }

    /// The buffer bound to a leaf, or nil when the scheduled graph does not read it.
    func buffer(_ leaf: Op) -> UnsafeMutablePointer<Float>? { leafBuffers[leaf] }

    func run() { executable.run() }

    func values(_ output: String) -> UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: executable.value(output), count: executable.elementCount(of: output))
    }
}
