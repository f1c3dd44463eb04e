import XCTest
@testable import VAECore

/// A product paired with another on the other core carries no epilogue big enough to be split
/// (`Staging.parallelElements`): such a kernel runs split in a stage of its own, so that the pair's
/// two products take equal times side by side (in the mnist step, dy·W₄ and Σ dy⊗h; the mask
/// multiplication after dy·W₄ made its side ~12 µs longer when it ran as its epilogue).
final class PairBalanceTests: XCTestCase {
    func testNoPairedProductCarriesASplittableEpilogue() throws {
        let program = try Compiler.compile(path: TestPaths.samples.appendingPathComponent("mnist.vae").path).program
        let executable = Executable(graph: program.graph, outputs: KernelTests.trainOutputs(program.model),
                                    batch: 128, threads: 2)
        let kernels = executable.program.kernels, stages = executable.staging.stages
        func elements(_ k: Int) -> Int? {
            if case .fused(let f) = kernels[k] { f.domain.elementCount(batch: 128) } else { nil }
        }
        func isProduct(_ k: Int) -> Bool { if case .matrix = kernels[k] { true } else { false } }

        let pairs = stages.filter { stage in !stage.split && stage.kernels.filter(isProduct).count >= 2 }
        XCTAssertGreaterThanOrEqual(pairs.count, 3)
        for stage in pairs {
            for epilogue in stage.epilogues {
                XCTAssertLessThan(try XCTUnwrap(elements(epilogue.kernel)), Staging.parallelElements,
                                  "k\(epilogue.kernel) runs on one thread after k\(epilogue.product) of a pair")
            }
        }

        // The [B,400] kernel after dy·W₄ (the ReLU mask and the bias gradient, a column sum) runs split.
        let producer = executable.program.producers()
        let masked = stages.filter { stage in
            guard stage.split, stage.kernels.count == 1, case .fused(let f) = kernels[stage.kernels[0]] else { return false }
            let readsDataGradient = f.inputs.contains { input in
                guard let p = producer[input.value], case .matrix(let m) = kernels[p] else { return false }
                return m.op == .denseTransposed
            }
            return f.domain == .example(400) && !f.columnSums.isEmpty && readsDataGradient
        }
        XCTAssertEqual(masked.count, 1)
    }
}
