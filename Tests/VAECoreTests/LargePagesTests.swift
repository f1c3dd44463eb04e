import Foundation
import XCTest
@testable import VAECore

/// `LargePages` puts buffers of at least 2 MiB on 2 MiB boundaries (where a transparent huge page can
/// back them) and leaves smaller ones to the usual allocator, 64-byte aligned; `ParameterStore` keeps
/// its tensors in one such block, each on its own cache line, without overlap.
final class LargePagesTests: XCTestCase {
    func testLargeBuffersStartOnAPageAndSmallOnesOnALine() {
        for count in [1, 16, 1_000, 65_536, LargePages.threshold / 4 - 1] {
            let p = LargePages.zeroed(floats: count)
            defer { p.deallocate() }
            XCTAssertEqual(Int(bitPattern: p) % 64, 0, "\(count) floats")
            XCTAssertTrue((0..<max(count, 16)).allSatisfy { p[$0].bitPattern == 0 }, "\(count) floats start at +0")
            p.update(repeating: 1, count: max(count, 16))
            XCTAssertEqual(p[max(count, 16) - 1], 1)
        }
        for count in [LargePages.threshold / 4, 2_600_000] {
            let p = LargePages.zeroed(floats: count)
            defer { p.deallocate() }
            XCTAssertEqual(Int(bitPattern: p) % LargePages.pageBytes, 0, "\(count) floats")
            XCTAssertTrue((0..<count).allSatisfy { p[$0].bitPattern == 0 }, "\(count) floats start at +0")
            // Every float of the buffer can be written and read back.
            for i in stride(from: 0, to: count, by: 4_099) { p[i] = Float(i) }
            p[count - 1] = -1
            XCTAssertEqual(p[4_099 * 3], Float(4_099 * 3))
            XCTAssertEqual(p[count - 1], -1)
        }
    }

    func testParameterTensorsAreLineAlignedAndDisjoint() {
        // The mnist model's shapes (2.6 MB in all: over the threshold) and a small model's.
        let shapes: [[Int]] = [[400, 784], [400], [20, 400], [20], [20, 400], [20], [400, 20], [400], [784, 400], [784], [3], [1]]
        for specs in [shapes, Array(shapes.suffix(3))] {
            let parameters = specs.enumerated().map { i, shape in
                ParameterSpec(name: "p\(i)", dims: shape, initialization: .constant(0))
            }
            let store = ParameterStore(specs: parameters)
            var regions: [(start: Int, end: Int)] = []
            for (i, spec) in parameters.enumerated() {
                let start = Int(bitPattern: store.pointers[i])
                XCTAssertEqual(start % 64, 0, spec.name)
                XCTAssertTrue((0..<spec.count).allSatisfy { store.pointers[i][$0] == 0 }, "\(spec.name) starts zeroed")
                regions.append((start, start + 4 * spec.count))
            }
            // Writing each tensor with its own number leaves every other tensor's values alone.
            for (i, spec) in parameters.enumerated() { store.set(i, Array(repeating: Float(i + 1), count: spec.count)) }
            for (i, _) in parameters.enumerated() {
                XCTAssertEqual(Set(store.values(i)), [Float(i + 1)], "tensor \(i) was overwritten by another")
            }
            let sorted = regions.sorted { $0.start < $1.start }
            for (a, b) in zip(sorted, sorted.dropFirst()) { XCTAssertLessThanOrEqual(a.end, b.start) }
        }
    }
}
