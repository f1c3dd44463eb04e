import XCTest
@testable import VAECore

/// The pair superinstructions (`PairedOperands.swift`): an op computed inside the pass of the binary op
/// after it, against the two passes one after the other, bit for bit; which instruction sequences get
/// a pair; and a summed result that is not written. (The whole programs against the plain interpreter,
/// and across thread counts, are `KernelTests`.)
final class PairSuperinstructionTests: XCTestCase {
    let vectors = 5
    var n: Int { 16 * vectors }

    /// Signed values over several binades, with ±0, large and tiny ones (as `SuperinstructionTests`).
    func values(_ seed: Int) -> [Float] {
        (0..<n).map { i in
            let k = (i * 37 + seed * 11) % 97
            return Float(k % 3 == 0 ? -1 : 1) * Float(k) * 0.173 * (k % 7 == 0 ? 40 : 1) + (k == 5 ? 0 : 0.01)
        }
    }

    let binaries: [ElementwiseFunction] = [.add, .subtract, .multiply, .divide, .maximum]
    var inners: [ElementwiseFunction] { binaries + FusedKernelRunner.pairableUnaries.sorted { $0.rawValue < $1.rawValue } }

    /// t = inner(x, w) as its own pass (unary ops read x only).
    func innerPass(_ inner: ElementwiseFunction, _ x: [Float], _ w: [Float]) -> [Float] {
        var t = [Float](repeating: 0, count: n)
        if binaries.contains(inner) {
            FusedKernelRunner.binary(inner, x, w, &t, vectors)
        } else {
            FusedKernelRunner.unary(inner, &t, x, vectors, n)
        }
        return t
    }

    /// Runs `body` with the pair's operands: inner(x, w) on the given side of `other`.
    func withPair<R>(_ inner: ElementwiseFunction, _ x: [Float], _ w: [Float], onTheLeft: Bool, of other: [Float],
                     _ body: (Operands) -> R) -> R {
        x.withUnsafeBufferPointer { x in
            w.withUnsafeBufferPointer { w in
                other.withUnsafeBufferPointer { o in
                    let wp = binaries.contains(inner) ? w.baseAddress! : x.baseAddress!
                    return body(Operands(computing: inner, x.baseAddress!, wp, onTheLeft: onTheLeft, of: o.baseAddress!))
                }
            }
        }
    }

    /// Every (inner, outer, side) pair with inner(x, w) on that side of `other`: `check` gets the pair, the
    /// two passes' result, and a label.
    func forEveryPair(_ x: [Float], _ w: [Float], _ other: [Float],
                      _ check: (_ inner: ElementwiseFunction, _ outer: ElementwiseFunction, _ left: Bool, _ expected: [Float], _ label: String) -> Void) {
        for inner in inners {
            let t = innerPass(inner, x, w)
            for outer in binaries {
                for left in [true, false] {
                    var expected = [Float](repeating: 0, count: n)
                    FusedKernelRunner.binary(outer, left ? t : other, left ? other : t, &expected, vectors)
                    check(inner, outer, left, expected, "\(inner) then \(outer), left: \(left)")
                }
            }
        }
    }

    func testAPairIsItsTwoPasses() {
        let x = values(1), w = values(2), other = values(3)
        forEveryPair(x, w, other) { inner, outer, left, expected, label in
            var y = [Float](repeating: 0, count: n)
            withPair(inner, x, w, onTheLeft: left, of: other) { FusedKernelRunner.binary(outer, $0, &y, vectors) }
            XCTAssertEqual(y.map(\.bitPattern), expected.map(\.bitPattern), label)
        }
    }

    func testAPairSummingARowIsItsPassesThenTheSum() {
        let x = values(4), w = values(5), other = values(6)
        forEveryPair(x, w, other) { inner, outer, left, expected, label in
            var y = [Float](repeating: 0, count: n)
            let total = withPair(inner, x, w, onTheLeft: left, of: other) {
                FusedKernelRunner.binarySummingRow(outer, $0, &y, vectors)
            }
            // Not writing the result changes nothing else.
            let unwritten = withPair(inner, x, w, onTheLeft: left, of: other) {
                FusedKernelRunner.binarySummingRow(outer, $0, nil, vectors)
            }
            XCTAssertEqual(y.map(\.bitPattern), expected.map(\.bitPattern), label)
            XCTAssertEqual(total.bitPattern, FusedKernelRunner.sum(expected, n).bitPattern, label + ": sum")
            XCTAssertEqual(unwritten.bitPattern, total.bitPattern, label + ": sum without the result")
        }
    }

    func testAPairSummingColumnsCopiesThenAccumulates() {
        let rows = [values(7), values(8), values(9)], w = values(10), other = values(11)
        for inner in inners {
            for outer in binaries {
                for left in [true, false] {
                    var partial = [Float](repeating: .nan, count: n), unwrittenPartial = partial
                    var expected = [Float](repeating: 0, count: n), y = expected, reference = expected
                    for (k, x) in rows.enumerated() {
                        let t = innerPass(inner, x, w)
                        FusedKernelRunner.binary(outer, left ? t : other, left ? other : t, &reference, vectors)
                        withPair(inner, x, w, onTheLeft: left, of: other) {
                            FusedKernelRunner.binarySummingColumns(outer, $0, &y, vectors, into: &partial, first: k == 0)
                            FusedKernelRunner.binarySummingColumns(outer, $0, nil, vectors, into: &unwrittenPartial, first: k == 0)
                        }
                        XCTAssertEqual(y.map(\.bitPattern), reference.map(\.bitPattern), "\(inner) then \(outer), row \(k)")
                        for i in 0..<n { expected[i] = k == 0 ? reference[i] : expected[i] + reference[i] }
                    }
                    XCTAssertEqual(partial.map(\.bitPattern), expected.map(\.bitPattern), "\(inner) then \(outer), left: \(left)")
                    XCTAssertEqual(unwrittenPartial.map(\.bitPattern), expected.map(\.bitPattern), "\(inner) then \(outer): unwritten")
                }
            }
        }
    }

    func testAPairReadingOneVectorForTheBlockIsItsPassesOverAFilledRegister() {
        let w = values(12), other = values(13)
        let splat = [Float](repeating: values(14)[3], count: n), vector = Array(splat[0..<16])
        for inner in inners {
            let t = innerPass(inner, splat, w)
            for outer in binaries {
                var expected = [Float](repeating: 0, count: n), y = expected
                FusedKernelRunner.binary(outer, t, other, &expected, vectors)
                vector.withUnsafeBufferPointer { x in
                    w.withUnsafeBufferPointer { w in
                        other.withUnsafeBufferPointer { o in
                            let wp = binaries.contains(inner) ? w.baseAddress! : x.baseAddress!
                            let operands = Operands(computing: inner, x.baseAddress!, stride: 0, wp, onTheLeft: true, of: o.baseAddress!)
                            FusedKernelRunner.binary(outer, operands, &y, vectors)
                        }
                    }
                }
                XCTAssertEqual(y.map(\.bitPattern), expected.map(\.bitPattern), "\(inner) of a splat, then \(outer)")
            }
        }
    }

    // MARK: Which sequences get a pair

    func superinstructions(_ code: [Instruction]) -> [BlockInstruction] {
        FusedKernelRunner.superinstructions(code.map { BlockInstruction($0, direct: FusedKernelRunner.DirectForm()) })
    }

    /// The consumer of each instruction's pair (-1 for none), checking that `fedBy` points back.
    func pairs(_ code: [Instruction]) -> [Int] {
        let code = superinstructions(code)
        for (i, c) in code.enumerated() where c.feeds >= 0 { XCTAssertEqual(code[Int(c.feeds)].fedBy, Int32(i)) }
        XCTAssertEqual(code.filter { $0.feeds >= 0 }.count, code.filter { $0.fedBy >= 0 }.count)
        return code.map { Int($0.feeds) }
    }

    func testAPairNeedsAResultOnlyALaterBinaryReads() {
        // r2 = r0·r1 read once by the next op, then redefined: a pair.
        XCTAssertEqual(pairs([.load(0, input: 0), .load(1, input: 1), .binary(.multiply, 2, 0, 1),
                              .binary(.subtract, 2, 0, 2), .store(2, slot: 0)]), [-1, -1, 3, -1, -1])
        // Loads between (even of an operand's register): still a pair.
        XCTAssertEqual(pairs([.load(0, input: 0), .load(1, input: 1), .binary(.add, 0, 0, 1), .load(1, input: 2),
                              .binary(.multiply, 1, 0, 1), .store(1, slot: 0)]), [-1, -1, 4, -1, -1, -1])
        // A load of the result's register between: no pair.
        XCTAssertEqual(pairs([.load(0, input: 0), .binary(.add, 1, 0, 0), .load(1, input: 1),
                              .binary(.multiply, 1, 0, 1), .store(1, slot: 0)]), [-1, -1, -1, -1, -1])
        // Anything else between: no pair.
        XCTAssertEqual(pairs([.load(0, input: 0), .binary(.add, 1, 0, 0), .store(0, slot: 1),
                              .binary(.multiply, 1, 0, 1), .store(1, slot: 0)]), [-1, -1, -1, -1, -1])
        // Read again later (here by a store): no pair.
        XCTAssertEqual(pairs([.load(0, input: 0), .load(1, input: 1), .binary(.multiply, 2, 0, 1),
                              .binary(.subtract, 3, 0, 2), .store(2, slot: 0), .store(3, slot: 1)]), [-1, -1, -1, -1, -1, -1])
        // Read as both operands: no pair.
        XCTAssertEqual(pairs([.load(0, input: 0), .unary(.negate, 1, 0), .binary(.multiply, 2, 1, 1),
                              .store(2, slot: 0)]), [-1, -1, -1, -1])
        // A special function is not paired; a cheap unary op is.
        XCTAssertEqual(pairs([.load(0, input: 0), .unary(.exp, 1, 0), .binary(.add, 1, 0, 1),
                              .store(1, slot: 0)]), [-1, -1, -1, -1])
        XCTAssertEqual(pairs([.load(0, input: 0), .unary(.negate, 1, 0), .binary(.add, 1, 0, 1),
                              .store(1, slot: 0)]), [-1, 2, -1, -1])
        // Not chained: the consumer of a pair is not the computed operand of another.
        XCTAssertEqual(pairs([.load(0, input: 0), .unary(.negate, 1, 0), .binary(.add, 1, 0, 1),
                              .binary(.multiply, 1, 1, 0), .store(1, slot: 0)]), [-1, 2, -1, -1, -1])
    }

    func testAPerColumnLoadIsASplatWhenOnlyFirstOpsOfPairsReadIt() {
        var column = FusedKernelRunner.DirectForm()
        column.perColumn = true
        func splats(_ code: [Instruction]) -> [Bool] {
            FusedKernelRunner.superinstructions(code.map {
                BlockInstruction($0, direct: $0 == code[1] ? column : FusedKernelRunner.DirectForm())
            }).map(\.splat)
        }
        // The likelihood kernel's g: −g·x and g·σ.
        let likelihood: [Instruction] = [.load(0, input: 0), .load(1, input: 1), .unary(.negate, 2, 1), .binary(.multiply, 2, 0, 2),
                                         .binary(.multiply, 1, 1, 0), .binary(.add, 2, 2, 1), .store(2, slot: 0)]
        XCTAssertEqual(splats(likelihood), [false, true, false, false, false, false, false])
        let code = FusedKernelRunner.superinstructions(likelihood.enumerated().map {
            BlockInstruction($0.element, direct: $0.offset == 1 ? column : FusedKernelRunner.DirectForm())
        })
        XCTAssertEqual(code.map(\.firstOperandIsSplat), [false, false, true, false, true, false, false])
        // Read by the consumer of a pair, or as a second operand: not a splat.
        XCTAssertEqual(splats([.load(0, input: 0), .load(1, input: 1), .unary(.negate, 2, 0), .binary(.multiply, 2, 1, 2),
                               .store(2, slot: 0)]), [false, false, false, false, false])
        XCTAssertEqual(splats([.load(0, input: 0), .load(1, input: 1), .binary(.multiply, 2, 0, 1), .binary(.add, 2, 2, 0),
                               .store(2, slot: 0)]), [false, false, false, false, false])
        // Stored: not a splat.
        XCTAssertEqual(splats([.load(0, input: 0), .load(1, input: 1), .unary(.negate, 2, 1), .binary(.multiply, 2, 0, 2),
                               .store(2, slot: 0), .store(1, slot: 1)]), [false, false, false, false, false, false])
    }

    func testASumOnlyResultIsNotWritten() {
        // −log p: summed and then redefined.
        let summed = superinstructions([.load(0, input: 0), .binary(.multiply, 1, 0, 0), .rowSum(1, slot: 0),
                                        .load(1, input: 1), .store(1, slot: 0)])
        XCTAssertEqual(summed.map(\.onlySummed), [false, true, false, false, false])
        // Summed and stored: written.
        let stored = superinstructions([.load(0, input: 0), .binary(.multiply, 1, 0, 0), .store(1, slot: 0),
                                        .columnSum(1, slot: 0)])
        XCTAssertEqual(stored.map(\.onlySummed).filter { $0 }.count, 0)
    }
}
