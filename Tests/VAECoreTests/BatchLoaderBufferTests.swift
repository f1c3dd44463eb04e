import Foundation
import XCTest
@testable import VAECore

/// `BatchLoader`'s input and noise buffers start on a cache line (the gather's 64-byte stores then
/// never straddle two), and a batch of byte-held rows lands in them with the bits of the rows
/// themselves, whether loaded in place or prefetched.
final class BatchLoaderBufferTests: XCTestCase {
    /// mnist's shape: 784 byte values per row (3,136 bytes of floats, a whole number of lines).
    func testBuffersAreLineAlignedAndHoldTheRowsAndDraws() throws {
        let count = 300, features = 784
        var random = RandomSource(seed: 31)
        let bytes = (0..<count * features).map { _ in random.nextIndex(below: 5) == 0 ? UInt8(random.nextIndex(below: 256)) : 0 }
        let data = Dataset(path: "memory", count: count, features: features,
                           storage: .bytes(ByteValues(bytes: bytes, scale: Float(1.0 / 255))))
        XCTAssertTrue(data.isCompact)
        for batch in [1, 3, 128] {
            let loader = BatchLoader(data: data, batch: batch, noisePerExample: 7)
            XCTAssertEqual(Int(bitPattern: loader.input) % 64, 0, "input, batch \(batch)")
            XCTAssertEqual(Int(bitPattern: loader.noise) % 64, 0, "noise, batch \(batch)")
            let rows = (0..<batch).map { _ in random.nextIndex(below: count) }
            let expected = rows.flatMap { row in bytes[row * features..<(row + 1) * features].map { Float($0) * Float(1.0 / 255) } }
            for prefetched in [false, true] {
                var draws = RandomSource(seed: UInt64(batch)), reference = draws
                if prefetched {
                    let tasks = loader.prefetch(rows[...], after: draws)
                    for task in 0..<tasks.count { tasks.body(task) }
                }
                loader.load(rows[...], random: &draws)
                let input = Array(UnsafeBufferPointer(start: loader.input, count: batch * features))
                let noise = Array(UnsafeBufferPointer(start: loader.noise, count: loader.noiseCount))
                XCTAssertEqual(input.map(\.bitPattern), expected.map(\.bitPattern), "batch \(batch), prefetched \(prefetched)")
                XCTAssertEqual(noise.map(\.bitPattern), reference.normals(batch * 7).map(\.bitPattern), "batch \(batch), prefetched \(prefetched)")
                XCTAssertEqual(draws, reference)
            }
        }
    }
}
