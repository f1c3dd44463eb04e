import XCTest
@testable import VAECore

/// A direct block (whole vectors, results computed in their stores' memory) that loads a broadcast
/// input (per feature, per example, per channel) and stores it as it is: the per-row fills and the
/// channel tiling write whole vectors, up to 15 floats past a row or a run. In a register that is
/// slack; in a store it was the memory after the block: the next value of the arena, or, with the
/// block cut into ranges of rows, rows another thread writes. (Found when a [B] kernel of the mnist step, `x ↦ (β, β·c)` with two
/// broadcast loads, ran over two ranges of rows: the first range zeroed 15 values of the second.)
final class DirectStoreBoundsTests: XCTestCase {
    private func check(domain: Shape, input: (count: Int, mode: Broadcast), batch: Int,
                       file: StaticString = #filePath, line: UInt = #line) {
        let kernel = FusedKernel(domain: domain, nodes: [1], inputs: [(value: 0, mode: input.mode)],
                                 code: [.load(0, input: 0), .store(0, slot: 0)], registers: 1,
                                 stores: [1], rowSums: [], columnSums: [])
        let count = domain.elementCount(batch: batch), guardCount = 32
        let source = UnsafeMutablePointer<Float>.allocate(capacity: input.count)
        let store = UnsafeMutablePointer<Float>.allocate(capacity: count + guardCount)
        defer { source.deallocate(); store.deallocate() }
        for i in 0..<input.count { source[i] = Float(i + 1) }
        store.initialize(repeating: -7, count: count + guardCount)
        let runner = FusedKernelRunner(kernel, batch: batch, pointer: { $0 == 0 ? source : store }, partials: nil)
        let registers = UnsafeMutablePointer<Float>.allocate(capacity: 4 * FusedKernelRunner.stride)
        defer { registers.deallocate() }
        // The upper half of the rows first, then the lower: the lower block must not touch the upper.
        let half = batch / 2
        runner.run(rows: half..<batch, registers: registers)
        runner.run(rows: 0..<half, registers: registers)
        let columns = domain.featureCount
        for r in 0..<batch {
            for c in 0..<columns {
                let expected: Float
                switch input.mode {
                case .row: expected = source[c]
                case .channel(let period): expected = source[c % period]
                default: expected = source[r]
                }
                XCTAssertEqual(store[r * columns + c], expected, "row \(r), column \(c)", file: file, line: line)
            }
        }
        XCTAssertEqual(Array(UnsafeBufferPointer(start: store + count, count: guardCount)),
                       Array(repeating: -7, count: guardCount), "written past the block", file: file, line: line)
        // One chunk over all rows: nothing past the value either.
        store.initialize(repeating: -7, count: count + guardCount)
        for chunk in 0..<runner.chunks { runner.run(chunk: chunk, registers: registers) }
        XCTAssertEqual(Array(UnsafeBufferPointer(start: store + count, count: guardCount)),
                       Array(repeating: -7, count: guardCount), "written past the value", file: file, line: line)
    }

    /// [B] domain, one value per feature broadcast down the batch (β in the loss kernel): 32-row blocks
    /// of one column are direct.
    func testAPerFeatureInputStoredFromAOneColumnBlock() {
        check(domain: .perExample, input: (1, .row), batch: 64)
    }

    /// [B,7] domain, one value per example broadcast across the features: 16 rows of 7 are 7 vectors.
    func testAPerExampleInputStoredFromAShortRowBlock() {
        check(domain: .example(7), input: (32, .column), batch: 32)
    }

    /// One-row blocks of 256 values, a bias of 3 channels tiled along them: the last run (256 = 85·3 + 1)
    /// is one value, and copying it wrote a whole vector past the row.
    func testAChannelInputStoredFromOneRowBlocks() {
        check(domain: .example(256), input: (3, .channel(3)), batch: 4)
    }
}
