import XCTest
@testable import VAECore

/// The Bernoulli likelihood kernel in one pass (`BernoulliLikelihoodPass`) against the interpreter with
/// its superinstructions and pairs: every output bit, on data with ±inf, NaN, ±100, subnormals and ±0, at
/// batch sizes with one, several and partial row chunks; and which programs it is chosen for.
final class BernoulliLikelihoodPassTests: XCTestCase {
    /// The mnist model's [B, 784] likelihood kernel (`k9`).
    static func likelihoodKernel() throws -> FusedKernel {
        let program = try Compiler.compile(path: TestPaths.samples.appendingPathComponent("mnist.vae").path).program
        let e = Executable(graph: program.graph, outputs: KernelTests.trainOutputs(program.model), batch: 8)
        return try XCTUnwrap(e.program.kernels.compactMap { k -> FusedKernel? in
            if case .fused(let f) = k, f.domain == .example(784) { f } else { nil }
        }.first)
    }

    /// A deterministic mix of ordinary values and, where allowed, the edge cases of every op of the chain.
    struct Values {
        var state: UInt64
        static let special: [Float] = [.infinity, -.infinity, .nan, 100, -100, 1.0e-40, -1.0e-40, .leastNonzeroMagnitude,
                                       .leastNormalMagnitude, 0, -0.0, 88.8, -104, .greatestFiniteMagnitude]
        mutating func next() -> UInt64 {   // SplitMix64
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        /// The edge cases that keep most sums finite: for a per-row input (a bias), read by every row, and a
        /// per-example one (the gradient's seed), read by every column.
        static let finiteSpecial: [Float] = [100, -100, 1.0e-40, -1.0e-40, .leastNonzeroMagnitude, .leastNormalMagnitude,
                                             0, -0.0, 88.8, -104]
        mutating func value(special: Bool, finite: Bool = false) -> Float {
            let r = next()
            let unit = Float(r >> 40) / Float(1 << 24)
            let specials = finite ? Self.finiteSpecial : Self.special
            switch r % 16 {
            case 0...3 where special: return specials[Int((r >> 8) % UInt64(specials.count))]
            case 4, 5, 6, 7: return unit   // data-like: [0, 1)
            case 8: return unit < 0.5 ? 0 : 1
            case 9: return unit < 0.5 ? -0.0 : 0
            default: return (unit - 0.5) * 24
            }
        }
    }

    /// Edge cases only in rows 2, 7, 12, … and columns 0, 3, 6, …, so that most row and column sums
    /// stay finite and their order of adds shows in their bits.
    static func specialAllowed(row: Int?, column: Int?) -> Bool {
        (row.map { $0 % 5 == 2 } ?? true) && (column.map { $0 % 3 == 0 } ?? true)
    }

    /// The kernel's results (stores, row sums, column sums, in that order) over random inputs.
    func results(_ kernel: FusedKernel, batch: Int, seed: UInt64, onePass: Bool,
                 file: StaticString = #filePath, line: UInt = #line) -> [[Float]] {
        let rows = batch, columns = kernel.domain.featureCount
        var random = Values(state: seed)
        var buffers: [ValueID: UnsafeMutablePointer<Float>] = [:]
        var allocated: [UnsafeMutablePointer<Float>] = []
        func buffer(_ v: ValueID, _ values: [Float]) {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(values.count, 1))
            p.initialize(from: values, count: values.count)
            buffers[v] = p
            allocated.append(p)
        }
        for (v, mode) in kernel.inputs {
            let values: [Float]
            switch mode {
            case .full:
                values = (0..<rows * columns).map {
                    random.value(special: Self.specialAllowed(row: $0 / columns, column: $0 % columns))
                }
            case .row:
                values = (0..<columns).map { random.value(special: Self.specialAllowed(row: nil, column: $0), finite: true) }
            case .column:
                values = (0..<rows).map { random.value(special: Self.specialAllowed(row: $0, column: nil), finite: true) }
            case .scalar: values = [1 + random.value(special: false)]   // not 0: the gradient would be all ±0
            case .channel(let period): values = (0..<period).map { _ in random.value(special: false) }
            }
            buffer(v, values)
        }
        // Results start as a pattern no computation gives, so an unwritten float shows.
        let unwritten = Float(bitPattern: 0x7FA5_A5A5)
        for v in kernel.stores { buffer(v, .init(repeating: unwritten, count: rows * columns)) }
        for v in kernel.rowSums { buffer(v, .init(repeating: unwritten, count: rows)) }
        for v in kernel.columnSums { buffer(v, .init(repeating: unwritten, count: columns)) }
        let chunks = FusedKernel.chunking(rows: rows, columns: columns).count
        let partials = UnsafeMutablePointer<Float>.allocate(capacity: max(1, kernel.columnSums.count * chunks * columns))
        let registers = UnsafeMutablePointer<Float>.allocate(capacity: max(1, kernel.registers) * FusedKernelRunner.stride)
        defer { allocated.forEach { $0.deallocate() }; partials.deallocate(); registers.deallocate() }
        let runner = FusedKernelRunner(kernel, batch: batch, pointer: { buffers[$0]! }, partials: partials,
                                       allowsOnePass: onePass)
        XCTAssertEqual(runner.onePass != nil, onePass, "the one-pass loop is used exactly when allowed", file: file, line: line)
        XCTAssertEqual(runner.chunks, chunks, file: file, line: line)
        for c in 0..<runner.chunks { runner.run(chunk: c, registers: registers) }
        runner.finish()
        return kernel.stores.map { Array(UnsafeBufferPointer(start: buffers[$0]!, count: rows * columns)) }
            + kernel.rowSums.map { Array(UnsafeBufferPointer(start: buffers[$0]!, count: rows)) }
            + kernel.columnSums.map { Array(UnsafeBufferPointer(start: buffers[$0]!, count: columns)) }
    }

    /// The same bits, except that any NaN matches any NaN. Which NaN an add or a multiply of two NaNs
    /// gives (their signs differ: +NaN from an input or through an abs, −NaN made by inf − inf or 0·inf)
    /// is the first operand's of the machine instruction, and the compiler commutes those operands
    /// freely (folding either load into the instruction): the source fixes it for neither path. In a
    /// release build, 1 of the 100,352 gradients of batch 128 here differs only so (−NaN against +NaN:
    /// x = inf, g = −0, logits NaN).
    static func sameBits(_ a: Float, _ b: Float) -> Bool { a.bitPattern == b.bitPattern || (a.isNaN && b.isNaN) }

    func hex(_ x: Float) -> String { "0x" + String(x.bitPattern, radix: 16) }

    /// Both paths on the same inputs, bit for bit, at batch 1, 3 (one partial chunk), 45 (12 + 12 + 12 + 9
    /// rows) and 128 (eight chunks of 16).
    func assertBothPathsAgree(_ kernel: FusedKernel, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let columns = kernel.domain.featureCount
        XCTAssertTrue(FusedKernel.chunking(rows: 45, columns: columns) == (12, 4), file: file, line: line)
        XCTAssertTrue(FusedKernel.chunking(rows: 128, columns: columns) == (16, 8), file: file, line: line)
        for batch in [1, 3, 45, 128] {
            for seed: UInt64 in [1, 2] {
                let interpreted = results(kernel, batch: batch, seed: seed, onePass: false, file: file, line: line)
                let onePass = results(kernel, batch: batch, seed: seed, onePass: true, file: file, line: line)
                XCTAssertEqual(interpreted.count, onePass.count, file: file, line: line)
                for (k, (a, b)) in zip(interpreted, onePass).enumerated() {
                    let mismatches = a.indices.filter { $0 < b.count && !Self.sameBits(a[$0], b[$0]) }
                    XCTAssertEqual(a.count, b.count, file: file, line: line)
                    XCTAssertTrue(mismatches.isEmpty,
                                  "\(what), batch \(batch), seed \(seed), result \(k): \(mismatches.count) of \(a.count) differ, "
                                  + "first at \(mismatches.first ?? -1): "
                                  + mismatches.prefix(1).map { "\(a[$0]) (\(hex(a[$0]))) against \(b[$0]) (\(hex(b[$0])))" }.joined(),
                                  file: file, line: line)
                }
                // The data reach the edge cases (NaN results) and leave most results finite (sums
                // whose order of adds shows).
                if batch == 128 {
                    for (k, result) in interpreted.enumerated() {
                        let finite = result.filter { $0.isFinite && $0 != 0 }.count
                        XCTAssertTrue(result.contains { $0.isNaN } && finite > result.count / 2,
                                      "\(what), result \(k): \(finite) of \(result.count) finite", file: file, line: line)
                    }
                }
            }
        }
    }

    func testTheMNISTLikelihoodKernelGivesTheSameBitsInOnePass() throws {
        assertBothPathsAgree(try Self.likelihoodKernel(), "mnist k9")
    }

    /// The same chain with a scalar gradient seed, without the gradient's store, without its column
    /// sum, and with only the loss's row sum.
    func testVariantsOfTheChainGiveTheSameBitsInOnePass() throws {
        let k9 = try Self.likelihoodKernel()
        var scalarSeed = k9
        let seed = try XCTUnwrap(k9.inputs.firstIndex { $0.mode == .column })
        scalarSeed.inputs[seed].mode = .scalar
        assertBothPathsAgree(scalarSeed, "scalar seed")

        var unstored = k9
        unstored.code.removeAll { if case .store = $0 { true } else { false } }
        unstored.stores = []
        assertBothPathsAgree(unstored, "no store")

        var unsummed = k9
        unsummed.code.removeAll { if case .columnSum = $0 { true } else { false } }
        unsummed.columnSums = []
        assertBothPathsAgree(unsummed, "no column sum")

        var lossOnly = unstored
        lossOnly.code.removeAll { if case .columnSum = $0 { true } else { false } }
        lossOnly.columnSums = []
        assertBothPathsAgree(lossOnly, "only the loss")
    }

    // MARK: Which programs

    func matches(_ kernel: FusedKernel, direct: Bool = true) -> Bool {
        let p = UnsafeMutablePointer<Float>(bitPattern: 64)!
        return BernoulliLikelihoodPass(kernel, inPlace: kernel.inputs.map { _ in direct },
                                       inputs: kernel.inputs.map { _ in UnsafePointer(p) },
                                       stores: kernel.stores.map { _ in p }, rowSums: kernel.rowSums.map { _ in p },
                                       partials: p) != nil
    }

    func testItIsChosenForTheLikelihoodKernelsOfTheSamplesAndNothingElse() throws {
        var chosen = 0
        for name in ["mnist", "keras_fixed", "keras_mean_bce", "cyclical", "mixture_prior", "gaussian_fixed"] {
            let program = try Compiler.compile(path: TestPaths.samples.appendingPathComponent("\(name).vae").path).program
            let e = Executable(graph: program.graph, outputs: KernelTests.trainOutputs(program.model), batch: 8)
            for case .fused(let f) in e.program.kernels where matches(f) {
                XCTAssertEqual(f.domain, .example(784), name)
                chosen += 1
            }
        }
        XCTAssertEqual(chosen, 5, "one kernel in each Bernoulli model, none in the Gaussian one")
    }

    func testAChangedProgramIsNotChosen() throws {
        let k9 = try Self.likelihoodKernel()
        XCTAssertTrue(matches(k9))
        XCTAssertFalse(matches(k9, direct: false), "inputs not read in place")
        func changed(_ change: (Instruction) -> Instruction?) -> FusedKernel {
            var k = k9
            k.code = k9.code.map { change($0) ?? $0 }
            return k
        }
        // −log p with its operands swapped: x·l − softplus.
        XCTAssertFalse(matches(changed { if case .binary(.subtract, let d, let a, let b) = $0 { .binary(.subtract, d, b, a) } else { nil } }))
        // The logits a·b instead of a + b (the first add of the program).
        var k = k9
        let add = try XCTUnwrap(k9.code.firstIndex { if case .binary(.add, _, _, _) = $0 { true } else { false } })
        if case .binary(_, let d, let a, let b) = k9.code[add] { k.code[add] = .binary(.multiply, d, a, b) }
        XCTAssertFalse(matches(k))
        // The seed's negation as an abs.
        XCTAssertFalse(matches(changed { if case .unary(.negate, let d, let s) = $0 { .unary(.abs, d, s) } else { nil } }))
        // The logits stored as well.
        k = k9
        let logits = try XCTUnwrap({ if case .binary(_, let d, _, _) = k9.code[add] { d } else { nil } }())
        k.code.insert(.store(logits, slot: 1), at: add + 1)
        k.stores.append(k9.stores[0])
        XCTAssertFalse(matches(k))
        // The data per column instead of in place.
        k = k9
        let data = try XCTUnwrap(k9.inputs.indices.last { k9.inputs[$0].mode == .full })
        k.inputs[data].mode = .column
        XCTAssertFalse(matches(k))
    }
}
