import XCTest
@testable import VAECore

/// The fused kernels' superinstructions (`FusedKernelRunner.superinstructions`): each merged pass against
/// the passes it replaces, run one after the other, bit for bit; and the mnist likelihood kernel gets
/// all three kinds. (The whole programs against the plain interpreter, and across thread counts, are
/// `KernelTests`.)
final class SuperinstructionTests: XCTestCase {
    typealias V = SIMD16<Float>
    let vectors = 5

    /// Signed values over several binades, with ±0, a large logit and a tiny one.
    func values(_ seed: Int) -> [Float] {
        (0..<(16 * vectors)).map { i in
            let k = (i * 37 + seed * 11) % 97
            return Float(k % 3 == 0 ? -1 : 1) * Float(k) * 0.173 * (k % 7 == 0 ? 40 : 1) + (k == 5 ? 0 : 0.01)
        }
    }

    let binaries: [ElementwiseFunction] = [.add, .subtract, .multiply, .divide, .maximum]

    func testBinaryFeedingSoftplusSigmoidIsBothPasses() {
        let a = values(1), b = values(2), n = 16 * vectors
        for f in binaries {
            var t1 = [Float](repeating: 0, count: n), p1 = t1, q1 = t1, t2 = t1, p2 = t1, q2 = t1
            FusedKernelRunner.binary(f, a, b, &t1, vectors)
            FusedKernelRunner.softplusSigmoid(t1, &p1, &q1, vectors)
            FusedKernelRunner.softplusSigmoid(of: f, a, b, storing: &t2, &p2, &q2, vectors)
            XCTAssertEqual(t1.map(\.bitPattern), t2.map(\.bitPattern), "\(f)")
            XCTAssertEqual(p1.map(\.bitPattern), p2.map(\.bitPattern), "\(f): softplus")
            XCTAssertEqual(q1.map(\.bitPattern), q2.map(\.bitPattern), "\(f): sigmoid")
        }
    }

    func testBinarySummingARowIsTheBinaryThenTheSum() {
        let a = values(3), b = values(4), n = 16 * vectors
        for f in binaries {
            var y1 = [Float](repeating: 0, count: n), y2 = y1
            FusedKernelRunner.binary(f, a, b, &y1, vectors)
            let total = FusedKernelRunner.binarySummingRow(f, a, b, &y2, vectors)
            XCTAssertEqual(y1.map(\.bitPattern), y2.map(\.bitPattern), "\(f)")
            XCTAssertEqual(total.bitPattern, FusedKernelRunner.sum(y1, n).bitPattern, "\(f): sum")
            // And against a scalar loop in the same order: 16 lane sums, then the lanes as a tree.
            var lanes = [Float](repeating: 0, count: 16)
            for i in 0..<n { lanes[i % 16] += y1[i] }
            XCTAssertEqual(total.bitPattern, VectorMath.sum(V(lanes)).bitPattern, "\(f): scalar order")
        }
    }

    func testBinarySummingColumnsCopiesThenAccumulates() {
        let n = 16 * vectors
        let rows = [values(5), values(6), values(7)], other = values(8)
        for f in binaries {
            var partial = [Float](repeating: .nan, count: n), expected = [Float](repeating: 0, count: n)
            var y = [Float](repeating: 0, count: n), reference = y
            for (k, row) in rows.enumerated() {
                FusedKernelRunner.binarySummingColumns(f, row, other, &y, vectors, into: &partial, first: k == 0)
                FusedKernelRunner.binary(f, row, other, &reference, vectors)
                XCTAssertEqual(y.map(\.bitPattern), reference.map(\.bitPattern), "\(f), row \(k)")
                for i in 0..<n { expected[i] = k == 0 ? reference[i] : expected[i] + reference[i] }
            }
            XCTAssertEqual(partial.map(\.bitPattern), expected.map(\.bitPattern), "\(f)")
        }
    }

    func testTheMNISTLikelihoodKernelGetsEverySuperinstruction() throws {
        let program = try Compiler.compile(path: TestPaths.samples.appendingPathComponent("mnist.vae").path).program
        let e = Executable(graph: program.graph, outputs: KernelTests.trainOutputs(program.model), batch: 8)
        let pixels = try XCTUnwrap(e.program.kernels.compactMap { k -> FusedKernel? in
            if case .fused(let f) = k, f.domain == .example(784) { f } else { nil }
        }.first)
        let forms = FusedKernelRunner.directForms(pixels, inputs: pixels.inputs.map { _ in UnsafePointer(bitPattern: 64)! },
                                                  stores: pixels.stores.map { _ in UnsafeMutablePointer(bitPattern: 1 << 20)! },
                                                  elements: 1)
        let code = FusedKernelRunner.superinstructions(zip(pixels.code, forms).map { BlockInstruction($0, direct: $1) })
        XCTAssertEqual(code.filter(\.feedsNext).count, 1, "the logits' add inside the softplus/sigmoid pass")
        XCTAssertEqual(code.filter { $0.feeds >= 0 }.count, 3, "pairs: x·logits into −log p, −g·x and g·σ into d(logits)")
        XCTAssertEqual(code.filter { $0.sums == .rowSum }.count, 1, "−log p summed in its own pass")
        XCTAssertEqual(code.filter { $0.sums == .rowSum && $0.onlySummed }.count, 1, "−log p never written")
        XCTAssertEqual(code.filter { $0.sums == .columnSum }.count, 1, "the bias gradient summed in its own pass")
        XCTAssertEqual(code.filter(\.absorbed).count, 2)
        XCTAssertEqual(code.filter(\.splat).count, 1, "g: one vector per one-row block")
        // A fed instruction is a binary right before the softplus/sigmoid that reads its result.
        for (i, c) in code.enumerated() where c.feedsNext {
            XCTAssertEqual(c.kind, .binary)
            XCTAssertEqual(code[i + 1].kind, .softplusSigmoid)
            XCTAssertEqual(code[i + 1].a, c.defined)
        }
        // Each pair's consumer is a binary that reads the first op's result and points back at it.
        for (i, c) in code.enumerated() where c.feeds >= 0 {
            let consumer = code[Int(c.feeds)]
            XCTAssertEqual(consumer.kind, .binary)
            XCTAssertEqual(consumer.fedBy, Int32(i))
            XCTAssertTrue(consumer.a == c.defined || consumer.b == c.defined)
        }
    }
}
