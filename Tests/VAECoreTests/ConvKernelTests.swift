import Foundation
import XCTest
@testable import VAECore

/// Issue 9: the fast image kernels (`ImageKernels`: im2col + GEMM, the single-channel direct loops, the
/// layout changes, the per-channel sum) against the direct loops of `ImageReference` on random data over
/// many geometries, and the same bits whatever the number of tasks or threads.
final class ConvKernelTests: XCTestCase {
    /// One image op on random operands: the reference result, and the fast kernel's with 1, 2 and 3 tasks.
    struct Case {
        let graph: Graph
        let kernel: StandaloneKernel
        let batch: Int
        let operands: [[Float]]

        init(_ op: Op, _ shapes: [Shape], batch: Int, seed: UInt64) {
            var builder = GraphBuilder()
            let leaves = shapes.enumerated().map { i, s in builder.add(.input("o\(i)"), shape: s) }
            let node = builder.add(op, leaves)
            graph = builder.graph
            kernel = StandaloneKernel(node: node, op: op, operands: leaves)
            self.batch = batch
            var rng = RandomSource(seed: seed)
            operands = shapes.map { rng.uniform($0.elementCount(batch: batch), in: -1...1) }
        }

        var resultCount: Int { graph[kernel.node].shape.elementCount(batch: batch) }

        func reference() -> [Float] {
            withOperands { pointers in
                var out = [Float](repeating: .nan, count: resultCount)
                out.withUnsafeMutableBufferPointer { y in
                    ImageReference.evaluate(graph[kernel.node], graph, batch: batch, operand: { UnsafePointer(pointers[$0]) },
                                            result: y.baseAddress!)
                }
                return out
            }
        }

        /// The fast kernel cut into `pieces` tasks, run in reverse order (tasks must not depend on order).
        func fast(pieces: Int, patchBudget: Int = ConvKernels.patchBudget) -> [Float] {
            withOperands { pointers in
                let out = UnsafeMutablePointer<Float>.allocate(capacity: max(resultCount, 1))
                defer { out.deallocate() }
                out.initialize(repeating: .nan, count: max(resultCount, 1))
                let tasks = ImageKernels.bind(kernel, graph, batch: batch, pieces: pieces, pointer: { id in
                    id == kernel.node ? out : pointers[kernel.operands.firstIndex(of: id)!]
                }, patchBudget: patchBudget)
                for task in tasks.reversed() { task(0) }
                return Array(UnsafeBufferPointer(start: out, count: resultCount))
            }
        }

        private func withOperands<R>(_ body: ([UnsafeMutablePointer<Float>]) -> R) -> R {
            let pointers = operands.map { values in
                let p = UnsafeMutablePointer<Float>.allocate(capacity: max(values.count, 1))
                p.initialize(from: values, count: values.count)
                return p
            }
            defer { for p in pointers { p.deallocate() } }
            return body(pointers)
        }
    }

    /// Fast against reference within float rounding (the sums run in another order), with the default
    /// chunks and with one example per chunk (patchBudget 1: the filter's sum over several chunks), and
    /// the same bits for 1, 2 and 3 tasks.
    func check(_ c: Case, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        let expected = c.reference()
        let scale = expected.reduce(Float(1)) { max($0, abs($1)) }
        for budget in [ConvKernels.patchBudget, 1] {
            let one = c.fast(pieces: 1, patchBudget: budget)
            XCTAssertEqual(one.count, expected.count, label, file: file, line: line)
            let worst = zip(one, expected).map { abs($0 - $1) }.max() ?? 0
            XCTAssertLessThanOrEqual(worst, 1e-5 * scale * 8, "\(label): largest difference \(worst), budget \(budget)",
                                     file: file, line: line)
            for pieces in [2, 3] {
                XCTAssertEqual(c.fast(pieces: pieces, patchBudget: budget).map(\.bitPattern), one.map(\.bitPattern),
                               "\(label), \(pieces) tasks, budget \(budget)", file: file, line: line)
            }
        }
    }

    /// Geometries over kernels 1/3/5, strides 1/2, same/valid, non-square odd and even sizes.
    static func geometries() throws -> [ConvGeometry] {
        var result: [ConvGeometry] = []
        for k in [1, 3, 5] {
            for s in [1, 2] {
                for padding in ConvGeometry.Padding.allCases {
                    // same: a multiple of the stride; valid: k + a multiple of the stride.
                    let base = padding == .same ? (s == 1 ? 5 : 6) : k + 2 * s
                    let input = Size2(base, base + s)
                    result.append(try ConvGeometry.convolution(input: input, kernel: Size2(k, k), stride: Size2(s, s), padding: padding))
                }
            }
        }
        // A non-square kernel with different strides per axis.
        result.append(try ConvGeometry.convolution(input: Size2(7, 8), kernel: Size2(3, 2), stride: Size2(1, 2), padding: .same))
        return result
    }

    static let channelPairs = [(1, 8), (3, 1), (8, 33), (33, 3), (1, 1), (3, 8)]

    func testConvolutionsMatchTheReference() throws {
        var seed: UInt64 = 1
        for (gi, g) in try Self.geometries().enumerated() {
            for (pi, (ci, co)) in Self.channelPairs.enumerated() {
                let batch = (gi + pi) % 2 == 0 ? 3 : 1
                let x = Shape.example(g.input.height, g.input.width, ci)
                let y = Shape.example(g.output.height, g.output.width, co)
                let w = Shape.fixed(co, ci, g.kernel.height, g.kernel.width)
                let label = "\(g) Ci \(ci) Co \(co) batch \(batch)"
                seed += 1
                check(Case(.conv2d(g), [x, w], batch: batch, seed: seed), "conv2d \(label)")
                check(Case(.conv2dTransposed(g), [y, w], batch: batch, seed: seed), "conv2d_t \(label)")
                check(Case(.conv2dFilter(g), [y, x], batch: batch, seed: seed), "conv2d_filter \(label)")
            }
        }
    }

    /// 64 channels: patch widths and weight rows of a multiple of 64 floats, which get padded leading
    /// dimensions so the GEMM reads them in place.
    func testSixtyFourChannelsMatchTheReference() throws {
        for (k, s, padding) in [(3, 2, ConvGeometry.Padding.same), (1, 1, .valid), (3, 1, .same)] {
            let g = try ConvGeometry.convolution(input: Size2(4, 6), kernel: Size2(k, k), stride: Size2(s, s), padding: padding)
            let x = Shape.example(g.input.height, g.input.width, 64), y = Shape.example(g.output.height, g.output.width, 64)
            let w = Shape.fixed(64, 64, k, k)
            check(Case(.conv2d(g), [x, w], batch: 2, seed: 5), "conv2d \(g) 64 channels")
            check(Case(.conv2dTransposed(g), [y, w], batch: 2, seed: 6), "conv2d_t \(g) 64 channels")
            check(Case(.conv2dFilter(g), [y, x], batch: 2, seed: 7), "conv2d_filter \(g) 64 channels")
        }
    }

    func testLayoutsAndChannelSumsMatchTheReference() {
        for (i, dims) in [[5, 6, 3], [4, 4, 33], [7, 3, 1], [2, 9, 17]].enumerated() {
            let image = Shape.example(dims[0], dims[1], dims[2])
            for batch in [1, 3] {
                let seed = UInt64(100 + 2 * i + batch)
                check(Case(.channelsFirst, [image], batch: batch, seed: seed), "channels_first \(dims)")
                check(Case(.channelsLast, [Shape.example(dims[2], dims[0], dims[1])], batch: batch, seed: seed), "channels_last \(dims)")
                check(Case(.reshape([dims.reduce(1, *)]), [image], batch: batch, seed: seed), "reshape \(dims)")
                check(Case(.sumToChannels, [image], batch: batch, seed: seed), "sum_to_channels \(dims)")
            }
        }
        // A batch of zero examples: the sums over it are zero.
        let g = try! ConvGeometry.convolution(input: Size2(6, 6), kernel: Size2(3, 3), stride: Size2(2, 2), padding: .same)
        for (ci, co) in [(1, 8), (8, 8)] {
            let c = Case(.conv2dFilter(g), [Shape.example(3, 3, co), Shape.example(6, 6, ci)], batch: 0, seed: 3)
            XCTAssertEqual(c.fast(pieces: 2), [Float](repeating: 0, count: co * ci * 9), "conv2d_filter of no examples, Ci \(ci)")
        }
    }

    /// A small conv network's forward and weight-gradient ops in one executable: the kernel program with
    /// one and two threads gives the same bits, and matches the plain interpreter.
    func testAConvGraphGivesTheSameBitsOnOneAndTwoThreads() throws {
        let down = try ConvGeometry.convolution(input: Size2(12, 12), kernel: Size2(3, 3), stride: Size2(2, 2), padding: .same)
        var b = GraphBuilder()
        let x = b.add(.input("x"), shape: .example(12, 12, 3))
        let w1 = b.add(.parameter("w1"), shape: .fixed(8, 3, 3, 3))
        let b1 = b.add(.parameter("b1"), shape: .fixed(8))
        let w2 = b.add(.parameter("w2"), shape: .fixed(8, 3, 3, 3))
        let h = b.add(.relu, [b.add(.add, [b.add(.conv2d(down), [x, w1]), b1])])
        let back = b.add(.conv2dTransposed(down), [h, w2])
        let flat = b.add(.reshape([8 * 36]), [b.add(.channelsFirst, [h])])
        let unflat = b.add(.channelsLast, [b.add(.reshape([8, 6, 6]), [flat])])
        b.setOutput("back", b.add(.sigmoid, [back]))
        b.setOutput("filter", b.add(.conv2dFilter(down), [unflat, x]))
        b.setOutput("bias", b.add(.sumToChannels, [h]))
        b.setOutput("flat", flat)
        let outputs = ["back", "filter", "bias", "flat"]
        let batch = 6

        var rng = RandomSource(seed: 11)
        let values: [(Op, [Float])] = [
            (.input("x"), rng.uniform(batch * 432, in: -1...1)), (.parameter("w1"), rng.uniform(216, in: -0.5...0.5)),
            (.parameter("b1"), rng.uniform(8, in: -0.1...0.1)), (.parameter("w2"), rng.uniform(216, in: -0.5...0.5)),
        ]
        var storage: [UnsafeMutablePointer<Float>] = []
        defer { for p in storage { p.deallocate() } }
        var results: [[[Float]]] = []
        for threads in [1, 2] {
            let run = Executable(graph: b.graph, outputs: outputs, batch: batch, threads: threads)
            for (op, v) in values {
                let p = UnsafeMutablePointer<Float>.allocate(capacity: v.count)
                p.initialize(from: v, count: v.count)
                storage.append(p)
                run.bind(run.uses(op)!, to: p)
            }
            func read(_ name: String) -> [Float] {
                Array(UnsafeBufferPointer(start: run.value(name)!, count: run.elementCount(of: name)))
            }
            if threads == 2 {
                // The bias and relu after the convolution run as its epilogue.
                XCTAssertTrue(run.staging.stages.contains { s in
                    s.epilogues.contains { if case .standalone = run.program.kernels[$0.product] { true } else { false } }
                }, "no image kernel with an epilogue")
            }
            run.run()
            results.append(outputs.map(read))
            if threads == 1 {
                run.run(inspecting: { _, _ in })
                for (name, fast) in zip(outputs, results[0]) {
                    let plain = read(name)
                    let worst = zip(fast, plain).map { abs($0 - $1) }.max() ?? 0
                    XCTAssertLessThanOrEqual(worst, 1e-4, "\(name): kernel program against the plain interpreter")
                }
            }
        }
        for (name, (one, two)) in zip(outputs, zip(results[0], results[1])) {
            XCTAssertFalse(one.isEmpty, name)
            XCTAssertEqual(one.map(\.bitPattern), two.map(\.bitPattern), "\(name): one against two threads")
        }
    }
}
