import XCTest
@testable import VAECore

/// The small kernels of a step that only other such kernels read (the loss and its terms summed over
/// the batch) fill a pair's stage instead of running alone on one thread (`Staging`).
final class LossKernelFillerTests: XCTestCase {
    func mnist() throws -> CompiledProgram {
        try Compiler.compile(path: TestPaths.samples.appendingPathComponent("mnist.vae").path).program
    }

    /// The loss kernels of the mnist step ([B] sums, a [] scalar: read by no product) no longer run alone
    /// on one thread: each fills a later pair's stage in row chunks, after the kernel it reads.
    func testTheLossKernelsFillPairStages() throws {
        let program = try mnist()
        let outputs = KernelTests.trainOutputs(program.model)
        let two = Executable(graph: program.graph, outputs: outputs, batch: 128, threads: 2)
        let small = two.program.kernels.indices.filter { k in
            if case .fused(let f) = two.program.kernels[k] { f.domain.featureCount == 1 } else { false }
        }
        XCTAssertGreaterThanOrEqual(small.count, 3)
        XCTAssertFalse(two.staging.stages.contains { $0.kernels.count == 1 && small.contains($0.kernels[0]) },
                       "a [B] or [] kernel alone in a stage")
        let stageOf = two.staging.stageOfKernel, producer = two.program.producers()
        let epilogues = two.staging.stages.flatMap { $0.epilogues.map { [$0.product, $0.kernel] } }
        for (c, kernel) in two.program.kernels.enumerated() {
            for v in kernel.reads {
                guard let p = producer[v], !epilogues.contains([p, c]) else { continue }
                XCTAssertLessThan(stageOf[p], stageOf[c], "k\(c) runs in the stage of k\(p), which it reads")
            }
        }
        let one = Executable(graph: program.graph, outputs: outputs, batch: 128, threads: 1)
        XCTAssertEqual(one.staging.stages.map(\.kernels), one.program.kernels.indices.map { [$0] })
    }
}
