import Foundation
import XCTest
@testable import VAECore

/// The inspection tools of issue 7: the IR's written grammar (Grammar/ir.ebnf) against every dump of
/// every sample, golden dumps, Graphviz output, `vaec grad` (values, first non-finite line, gradients as
/// safetensors) and `vaec check` (finite differences; it must pass on the samples and fail on a wrong
/// gradient).
final class InspectTests: XCTestCase {

    // MARK: - The grammar of the IR text

    static let irGrammar = TestPaths.packageRoot.appendingPathComponent("Grammar/ir.ebnf")

    static func loadGrammar() throws -> IRGrammarMatcher {
        IRGrammarMatcher(grammar: try EBNF(text: String(contentsOf: irGrammar, encoding: .utf8)))
    }

    func testIRGrammarIsClosed() throws {
        let grammar = try Self.loadGrammar().grammar
        let defined = Set(grammar.rules.keys)
        var used: Set<String> = []
        for rule in grammar.rules.values { used.formUnion(rule.body.nonterminals) }
        XCTAssertEqual(used.subtracting(defined).sorted(), [], "rules used but not defined in Grammar/ir.ebnf")
        XCTAssertEqual(defined.subtracting(used).subtracting(["dump", "line"]).sorted(), [],
                       "rules defined but never used in Grammar/ir.ebnf")
    }

    /// Every dump `vaec compile` can print (ir, grad, after each pass, opt) of every sample: each line
    /// matches the `line` rule as the right kind (title, node or output) in the order the `dump` rule
    /// gives, and the values are numbered in order with operands and outputs referring to earlier values.
    /// (Distinct lines are matched once: the dumps after each pass share most lines. One whole dump is
    /// also matched against the `dump` rule itself.)
    func testEveryDumpOfEverySampleMatchesTheGrammar() throws {
        let matcher = try Self.loadGrammar()
        let samples = try TestPaths.files(in: TestPaths.samples, withExtension: "vae")
        XCTAssertFalse(samples.isEmpty)
        enum Kind: Int { case title, node, output, none }
        var kinds: [Substring: Kind] = [:]
        func kind(_ line: Substring) -> Kind {
            if let known = kinds[line] { return known }
            let found = [Kind.title, .node, .output].first { matcher.matches(String(line), rule: "\($0)") } ?? .none
            kinds[line] = found
            return found
        }
        var lines = 0
        for sample in samples {
            let result = try Compiler.compile(path: sample.path)
            var dumps: [(String, String)] = [
                ("ir", IRPrinter.print(result.model.graph, title: "checked forward graph of \(sample.path)")),
                ("grad", IRPrinter.print(result.gradientGraph, title: "with the gradient, before optimisation")),
                ("opt", IRPrinter.print(result.program.graph, title: "optimised")),
            ]
            for (pass, graph) in result.afterPass { dumps.append(("after \(pass)", IRPrinter.print(graph, title: "after \(pass)"))) }
            for (stage, text) in dumps {
                let where_ = "\(sample.lastPathComponent) --dump \(stage)"
                var previous = Kind.title
                for (index, line) in text.split(separator: "\n").enumerated() {
                    lines += 1
                    let k = kind(line)
                    XCTAssertNotEqual(k, .none, "\(where_): this line is not in Grammar/ir.ebnf:\n\(line)")
                    XCTAssertTrue(k.rawValue >= previous.rawValue && (k != .title || index == 0),
                                  "\(where_): a \(k) line out of the order title, nodes, outputs: \(line)")
                    previous = k
                }
                try Self.checkNumbering(text, where: where_)
            }
            if sample.lastPathComponent == "mnist.vae" {
                XCTAssertTrue(matcher.matches(dumps[1].1, rule: "dump"), "mnist.vae --dump grad as a whole does not match the 'dump' rule")
            }
        }
        XCTAssertGreaterThan(lines, 1000)
    }

    /// A line for every op (from the op table of the gradient tests), with the right number of operands,
    /// matches: so an op missing from the grammar's lists is caught even before a sample uses it.
    func testEveryOpPrintsALineOfTheGrammar() throws {
        let matcher = try Self.loadGrammar()
        for op in GradientCheckTests.allOps {
            let node = Node(op: op, operands: Array(0..<op.arity), shape: .example(3), name: "a.b", line: 7)
            let line = IRPrinter.line(5, node)
            XCTAssertTrue(matcher.matches(line, rule: "line"), "\(op.mnemonic): \(line)")
        }
        for v: Float in [0.5, -1e-5, 1.0e20, .infinity, -.infinity, .nan, 3, 0.0012755102] {
            let line = IRPrinter.line(0, Node(op: .constant(v), operands: [], shape: .scalar, name: nil, line: 0))
            XCTAssertTrue(matcher.matches(line, rule: "line"), line)
        }
    }

    /// The matcher is not vacuous: lines that break the grammar are refused.
    func testTheGrammarRefusesMalformedLines() throws {
        let matcher = try Self.loadGrammar()
        XCTAssertTrue(matcher.matches("%3 = dense %0, %1 : [B,400]                   # @9", rule: "line"))
        for bad in ["%3 = dense %0 : [B,400]",                 // dense takes two operands
                    "%3 = relu %0, %1 : [B,400]",              // relu takes one
                    "%3 = frobnicate %0 : [B,400]",            // no such op
                    "%3 = relu %0",                             // no shape
                    "%3 = relu %0 : [400,B]",                   // B comes first
                    "%3 = relu %0 : [B,400]  # two words",      // a name has no spaces
                    "%3 = param encoder.h.weight : [400,784]",  // names are quoted
                    "output loss %46",
                    "3 = relu %0 : [B]"] {
            XCTAssertFalse(matcher.matches(bad, rule: "line"), "accepted: \(bad)")
        }
    }

    /// Values %0, %1, … in order; operands and outputs refer to values already defined.
    static func checkNumbering(_ text: String, where: String) throws {
        var next = 0
        for line in text.split(separator: "\n") {
            if line.hasPrefix("%") {
                let parts = line.split(separator: " ")
                XCTAssertEqual(parts[0], "%\(next)", "\(`where`): values are not numbered in order at: \(line)")
                let ir = line.split(separator: "#")[0].split(separator: ":")[0]
                for ref in ir.split(separator: " ").dropFirst().filter({ $0.hasPrefix("%") }) {
                    let id = Int(ref.dropFirst().trimmingCharacters(in: CharacterSet(charactersIn: ",")))!
                    XCTAssertLessThan(id, next, "\(`where`): an operand is not an earlier value: \(line)")
                }
                next += 1
            } else if line.hasPrefix("output ") {
                let id = Int(line.split(separator: "%").last!)!
                XCTAssertLessThan(id, next, "\(`where`): an output refers to a missing value: \(line)")
            }
        }
    }

    // MARK: - Golden dumps

    static let goldenFolder = TestPaths.fixtures.appendingPathComponent("golden")
    /// The dumps that must have a golden file: `vaec compile samples/S.vae --dump STAGE`, without its title
    /// line (`… | tail -n +2`). Any other `S.STAGE.ir` file put in the folder is compared as well.
    static let requiredGolden = ["mnist.grad.ir", "mnist.opt.ir"]

    /// Plain-text comparison with the stored dumps. After an intended change to the compiler, regenerate
    /// them with `VAEC_UPDATE_GOLDEN=1 swift test --filter InspectTests/testGoldenDumps` and review the diff.
    func testGoldenDumps() throws {
        let update = ProcessInfo.processInfo.environment["VAEC_UPDATE_GOLDEN"] == "1"
        let present = (try? TestPaths.files(in: Self.goldenFolder, withExtension: "ir").map(\.lastPathComponent)) ?? []
        var compiled: [String: Compiler.Result] = [:]
        for file in Set(Self.requiredGolden + present).sorted() {
            let parts = file.split(separator: ".")
            guard parts.count == 3, ["ir", "grad", "opt"].contains(parts[1]) else {
                XCTFail("golden file '\(file)' is not named SAMPLE.(ir|grad|opt).ir"); continue
            }
            let sample = String(parts[0]), stage = String(parts[1])
            let result = try compiled[sample] ?? Compiler.compile(path: TestPaths.samples.appendingPathComponent("\(sample).vae").path)
            compiled[sample] = result
            let graph = stage == "ir" ? result.model.graph : stage == "grad" ? result.gradientGraph : result.program.graph
            let actual = IRPrinter.print(graph)
            let url = Self.goldenFolder.appendingPathComponent(file)
            if update {
                try FileManager.default.createDirectory(at: Self.goldenFolder, withIntermediateDirectories: true)
                try actual.write(to: url, atomically: true, encoding: .utf8)
                print("regenerated \(url.path)")
                continue
            }
            guard let expected = try? String(contentsOf: url, encoding: .utf8) else {
                XCTFail("no golden file \(url.path); create it with VAEC_UPDATE_GOLDEN=1"); continue
            }
            if actual != expected {
                let a = actual.split(separator: "\n", omittingEmptySubsequences: false)
                let e = expected.split(separator: "\n", omittingEmptySubsequences: false)
                let first = (0..<min(a.count, e.count)).first { a[$0] != e[$0] } ?? min(a.count, e.count)
                XCTFail("""
                    \(file) differs from 'vaec compile samples/\(sample).vae --dump \(stage)' at line \(first + 1):
                      golden: \(first < e.count ? String(e[first]) : "<end>")
                      now:    \(first < a.count ? String(a[first]) : "<end>")
                    If the change is intended, regenerate with VAEC_UPDATE_GOLDEN=1.
                    """)
            }
        }
    }

    // MARK: - Graphviz

    func testDotOfTheSampleIsWellFormedAndTellsForwardFromGradientOps() throws {
        let graph = try Compiler.compile(path: TestPaths.samples.appendingPathComponent("mnist.vae").path).program.graph
        let dot = DotWriter(title: "mnist").write(graph)
        let structure = try DotStructure(dot)
        let roles = NodeRole.of(graph)
        // Every op is drawn once; constants and hypers are drawn at each use instead.
        for (id, node) in graph.nodes.enumerated() where roles[id] != .constant && roles[id] != .hyper {
            XCTAssertNotNil(structure.nodes["n\(id)"], "%\(id) \(node.op.mnemonic) is not drawn")
        }
        XCTAssertTrue(roles.contains(.forward) && roles.contains(.gradient))
        for (id, role) in roles.enumerated() {
            let attributes = structure.nodes["n\(id)"] ?? ""
            switch role {
            case .forward: XCTAssertTrue(attributes.contains("\"#e4f3e4\"") && attributes.contains("shape = ellipse"), "forward %\(id): \(attributes)")
            case .gradient: XCTAssertTrue(attributes.contains("\"#f9d3c7\"") && attributes.contains("rounded"), "gradient %\(id): \(attributes)")
            case .parameter: XCTAssertTrue(attributes.contains("shape = box") && attributes.contains("\"#ffe9a8\""), attributes)
            case .input: XCTAssertTrue(attributes.contains("shape = invhouse"), attributes)
            case .noise: XCTAssertTrue(attributes.contains("shape = diamond"), attributes)
            default: break
            }
        }
        // The weight gradients are outer sums made by the backward sweep; the first dense is forward.
        let outer = try XCTUnwrap(graph.nodes.firstIndex { $0.op == .outerSum })
        XCTAssertEqual(roles[outer], .gradient)
        XCTAssertEqual(roles[try XCTUnwrap(graph.nodes.firstIndex { $0.op == .dense })], .forward)
        // Labels carry the op, the shape and the source name and line.
        let relu = try XCTUnwrap(graph.nodes.firstIndex { $0.op == .relu && $0.name == "encoder.h" })
        let label = "%\(relu) relu\\n[B,400]\\nencoder.h, line \(graph[relu].line)"
        XCTAssertTrue(structure.nodes["n\(relu)"]?.contains(label) == true, "\(structure.nodes["n\(relu)"] ?? "") lacks \(label)")
        // One edge per operand (per use for constants), operand → result.
        let operandEdges = graph.nodes.reduce(0) { $0 + $1.operands.count }
        XCTAssertEqual(structure.edges.filter { !$0.to.hasPrefix("out") }.count, operandEdges)
        XCTAssertTrue(structure.edges.contains { $0.from == "n0" && $0.to == "n3" })
        XCTAssertEqual(structure.edges.filter { $0.to.hasPrefix("out") }.count, graph.outputs.count)
    }

    func testDotDepthKeepsOnlyNodesNearTheOutputs() throws {
        let graph = try Compiler.compile(path: TestPaths.samples.appendingPathComponent("mnist.vae").path).program.graph
        let hops = DotWriter.hopsFromOutputs(graph)
        let full = try DotStructure(DotWriter().write(graph))
        let trimmed = try DotStructure(DotWriter(depth: 2).write(graph))
        let roles = NodeRole.of(graph)
        func drawnOnce(_ id: ValueID) -> Bool { roles[id] != .constant && roles[id] != .hyper }
        // Drawn: exactly the ops within 2 hops; stubs: exactly their operands one hop further.
        let near = Set(graph.nodes.indices.filter { hops[$0] <= 2 && drawnOnce($0) })
        let stubs = Set(near.flatMap { graph[$0].operands }.filter { hops[$0] == 3 && drawnOnce($0) })
        let ids = trimmed.nodes.filter { $0.key.hasPrefix("n") && !$0.key.contains("_") }
        XCTAssertEqual(Set(ids.filter { !$0.value.contains("dashed") }.keys), Set(near.map { "n\($0)" }))
        XCTAssertEqual(Set(ids.filter { $0.value.contains("dashed") }.keys), Set(stubs.map { "n\($0)" }))
        XCTAssertLessThan(near.count, full.nodes.count / 2)
        // The loss's own node is an output, so it is drawn.
        XCTAssertNotNil(trimmed.nodes["n\(graph.output(OutputName.loss)!)"])
    }

    /// The hook for fused kernels: clusters become `subgraph cluster_k` holding their nodes.
    func testDotClustersBecomeSubgraphs() throws {
        let graph = try Compiler.compile(path: TestPaths.samples.appendingPathComponent("mnist.vae").path).program.graph
        let ops = graph.nodes.indices.filter { graph[$0].op.kind != .leaf }
        let first = Array(ops[0..<3]), second = Array(ops[3..<5])
        let structure = try DotStructure(DotWriter(clusters: [first, second]).write(graph))
        XCTAssertEqual(structure.clusters["cluster_0"]?.sorted(), first.map { "n\($0)" }.sorted())
        XCTAssertEqual(structure.clusters["cluster_1"]?.sorted(), second.map { "n\($0)" }.sorted())
        XCTAssertEqual(structure.clusters.count, 2)
    }

    /// Graphviz itself accepts the DOT (full, trimmed, with clusters) where `dot` is installed.
    func testGraphvizAcceptsTheDot() throws {
        guard let dot = ["/usr/bin/dot", "/usr/local/bin/dot", "/opt/homebrew/bin/dot"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("Graphviz's 'dot' is not installed (apt-get install graphviz); only the structural check ran")
        }
        let graph = try Compiler.compile(path: TestPaths.samples.appendingPathComponent("mnist.vae").path).program.graph
        let folder = try TestPaths.temporaryFolder(for: self)
        for (name, writer) in [("full", DotWriter(title: "mnist")), ("depth", DotWriter(depth: 3)), ("clusters", DotWriter(clusters: [[3, 4, 5]]))] {
            let file = folder.appendingPathComponent("\(name).dot")
            try writer.write(graph).write(to: file, atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: dot)
            process.arguments = ["-Tsvg", "-o", folder.appendingPathComponent("\(name).svg").path, file.path]
            let errors = Pipe()
            process.standardError = errors
            try process.run()
            let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            XCTAssertEqual(process.terminationStatus, 0, "dot refused \(name).dot: \(message)")
            XCTAssertFalse(message.lowercased().contains("error"), message)
        }
    }

    // MARK: - vaec grad

    func testValueStatistics() {
        let s = ValueStatistics([1, -2, .nan, .infinity, 4, .nan])
        XCTAssertEqual(s.count, 6)
        XCTAssertEqual(s.nanCount, 2)
        XCTAssertEqual(s.infCount, 1)
        XCTAssertEqual(s.min, -2)
        XCTAssertEqual(s.max, .infinity)
        XCTAssertEqual(s.mean, 1, accuracy: 1e-12)        // over the finite values
        XCTAssertFalse(s.isFinite)
        XCTAssertTrue(ValueStatistics([0, 1]).isFinite)
        XCTAssertEqual(ValueStatistics([.nan]).summary, "min - max - mean - nan 1 inf 0")
    }

    /// A decoder with exp(exp(·)) and a checkpoint whose decoder bias is 5: the inner exp gives e⁵ ≈ 148
    /// (finite), the outer e¹⁴⁸ overflows Float32. `--values` must mark the outer exp, on the decoder's
    /// line, as the first non-finite value, with every value before it finite.
    func testValuesPointAtTheOpThatOverflowsFirst() throws {
        let folder = try TestPaths.temporaryFolder(for: self)
        let (model, program) = try Self.overflowModel(in: folder)
        let parameters = ParameterStore(specs: model.parameters)
        var random = RandomSource(seed: 1)
        parameters.initialize(random: &random)
        let weight = try XCTUnwrap(parameters.index(of: "decoder.h.weight"))
        let bias = try XCTUnwrap(parameters.index(of: "decoder.h.bias"))
        parameters.set(weight, [Float](repeating: 0, count: parameters.specs[weight].count))
        parameters.set(bias, [Float](repeating: 5, count: parameters.specs[bias].count))
        let checkpoint = folder.appendingPathComponent("overflow.safetensors").path
        try Checkpoint.save(parameters, model: model, epoch: 1, step: 3, to: checkpoint)

        let data = try EvaluationPoint.dataset(for: model, path: nil, scale: nil, modelDirectory: folder.path)
        let point = try EvaluationPoint.load(model: model, checkpoint: checkpoint, data: data, rows: 0..<2, noise: .zero)
        let evaluator = try GraphEvaluator(graph: program.graph, point: point,
                                           outputs: [OutputName.loss] + GraphEvaluator.gradientOutputs(of: model))
        let trace = evaluator.trace()
        let first = try XCTUnwrap(trace.firstNonFinite)
        let entry = trace.entries[first]
        let decoderLine = Self.line(of: "h = exp(exp(", in: model.sourceText)
        XCTAssertEqual(entry.node.op, .exp)
        XCTAssertEqual(program.graph[entry.node.operands[0]].op, .exp, "the first Inf is the outer exp, not the inner one")
        XCTAssertEqual(entry.node.line, decoderLine)
        XCTAssertEqual(entry.statistics.infCount, 2 * 3)
        XCTAssertTrue(trace.entries[..<first].allSatisfy { $0.statistics.isFinite })
        let inner = try XCTUnwrap(trace.entries.first { $0.id == entry.node.operands[0] })
        XCTAssertEqual(Double(inner.statistics.max), Foundation.exp(5), accuracy: 1e-3)

        let text = trace.render()
        let marked = text.split(separator: "\n").filter { $0.contains(ValueTrace.marker) }
        XCTAssertEqual(marked.count, 1)
        XCTAssertTrue(marked[0].hasPrefix(IRPrinter.line(entry.id, entry.node)), String(marked[0]))
        XCTAssertTrue(marked[0].contains("inf 6"), String(marked[0]))
        XCTAssertTrue(trace.verdict.contains("overflow.vae:\(decoderLine): h = exp(exp(linear(z, 3)))"), trace.verdict)
        // Every evaluated value is listed once, in schedule order.
        XCTAssertEqual(trace.entries.map(\.id), trace.entries.map(\.id).sorted())
        XCTAssertEqual(Set(trace.entries.map(\.id)).count, trace.entries.count)
    }

    /// `--noise zero` evaluates at z = μ: the sample equals the posterior mean exactly.
    func testZeroNoiseEvaluatesAtThePosteriorMean() throws {
        let folder = try TestPaths.temporaryFolder(for: self)
        let (model, program) = try Self.overflowModel(in: folder)
        let data = try EvaluationPoint.dataset(for: model, path: nil, scale: nil, modelDirectory: folder.path)
        let point = try EvaluationPoint.load(model: model, checkpoint: nil, data: data, rows: 1..<4, noise: .zero)
        XCTAssertTrue(point.noise.allSatisfy { $0 == 0 })
        XCTAssertEqual(point.input, Array(data.values[(1 * 4)..<(4 * 4)]))
        let trace = try GraphEvaluator(graph: program.graph, point: point, outputs: [OutputName.loss]).trace()
        let meanID = try XCTUnwrap(program.graph.output(OutputName.posteriorMean))
        let zID = try XCTUnwrap(program.graph.nodes.firstIndex { $0.name == model.latent.name })
        let mean = try XCTUnwrap(trace.entries.first { $0.id == meanID }).statistics
        let z = try XCTUnwrap(trace.entries.first { $0.id == zID }).statistics
        XCTAssertEqual(mean, z)
        let seeded = try EvaluationPoint.load(model: model, checkpoint: nil, data: data, rows: 1..<4, noise: .seeded(3))
        XCTAssertTrue(seeded.noise.contains { $0 != 0 })
    }

    /// `--out`: one tensor per parameter under its own name and shape, equal to the graph's gradient
    /// outputs; the gradient itself is checked against finite differences by the check tests.
    func testGradientsAreWrittenUnderTheParametersNames() throws {
        let folder = try TestPaths.temporaryFolder(for: self)
        let (model, program) = try Self.overflowModel(in: folder)
        let data = try EvaluationPoint.dataset(for: model, path: nil, scale: nil, modelDirectory: folder.path)
        let point = try EvaluationPoint.load(model: model, checkpoint: nil, data: data, rows: nil, noise: .seeded(0))
        let report = try GradientReport.evaluate(graph: program.graph, point: point)
        let path = folder.appendingPathComponent("grads.safetensors").path
        try report.write(to: path)
        let file = try SafeTensors.read(path: path)
        XCTAssertEqual(Set(file.tensors.keys), Set(model.parameters.map(\.name)))
        let evaluator = try GraphEvaluator(graph: program.graph, point: point, outputs: GraphEvaluator.gradientOutputs(of: model))
        evaluator.run()
        for spec in model.parameters {
            let tensor = try XCTUnwrap(file.tensors[spec.name])
            XCTAssertEqual(tensor.shape, spec.dims)
            XCTAssertEqual(tensor.values, evaluator.values(OutputName.gradient(spec.name)))
            XCTAssertTrue(tensor.values.contains { $0 != 0 }, "\(spec.name)'s gradient is all zero")
        }
        XCTAssertEqual(file.metadata["model"], model.name)
        XCTAssertTrue(report.table.contains("decoder.h.weight"))
        XCTAssertEqual(point.rows, 0..<model.train.batch, "the default rows are the first training batch")
    }

    /// `--data`: the model's own data file gets its train-block scale; another file is read unscaled
    /// unless `--scale` says otherwise.
    func testDataFilesAndTheirScale() throws {
        let folder = try TestPaths.temporaryFolder(for: self)
        let (model, _) = try Self.overflowModel(in: folder, scale: "0.5")
        let other = folder.appendingPathComponent("other.csv")
        try "1,2,3,4\n5,6,7,8\n".write(to: other, atomically: true, encoding: .utf8)
        let cwd = FileManager.default.currentDirectoryPath
        let own = try EvaluationPoint.dataset(for: model, path: folder.appendingPathComponent("data.csv").path, scale: nil, modelDirectory: folder.path)
        let byDefault = try EvaluationPoint.dataset(for: model, path: nil, scale: nil, modelDirectory: folder.path)
        XCTAssertEqual(own.values, byDefault.values)
        XCTAssertEqual(own.values[0], Self.overflowData[0] * 0.5)
        let plain = try EvaluationPoint.dataset(for: model, path: other.path, scale: nil, modelDirectory: folder.path)
        XCTAssertEqual(plain.values, [1, 2, 3, 4, 5, 6, 7, 8])
        let scaled = try EvaluationPoint.dataset(for: model, path: other.path, scale: 0.25, modelDirectory: folder.path)
        XCTAssertEqual(scaled.values[7], 2)
        XCTAssertEqual(FileManager.default.currentDirectoryPath, cwd)
        XCTAssertThrowsError(try EvaluationPoint.load(model: model, checkpoint: nil, data: plain, rows: 1..<5, noise: .zero)) { error in
            XCTAssertTrue("\(error)".contains("not within the 2 rows"), "\(error)")
        }
    }

    // MARK: - vaec check

    /// Every sample passes. The samples' 400-unit hidden layers are narrowed to 8 for the debug build (the
    /// check's cost is the layers' size; the likelihoods, objectives and schedules are the samples' own),
    /// on 3 rows of the real training data; `vaec check samples/S.vae` checks the full-size samples.
    func testCheckPassesOnEverySample() throws {
        let samples = try TestPaths.files(in: TestPaths.samples, withExtension: "vae")
        var cache: [String: Dataset] = [:]
        var options = GradientCheck.Options()
        options.directions = 1
        for sample in samples {
            let text = try String(contentsOf: sample, encoding: .utf8).replacingOccurrences(of: "400", with: "8")
                .replacingOccurrences(of: "64", with: "8").replacingOccurrences(of: "32", with: "4")   // keras_conv's channels
            let result = try Compiler.compile(source: SourceFile(path: sample.path, text: text))
            let model = result.model
            let key = "\(model.train.data?.path ?? "-") \(model.train.data?.scale ?? 1)"
            let data = try cache[key] ?? EvaluationPoint.dataset(for: model, path: nil, scale: nil, modelDirectory: TestPaths.samples.path)
            cache[key] = data
            let point = try EvaluationPoint.load(model: model, checkpoint: nil, data: data, rows: 0..<3, noise: .seeded(model.train.seed))
            let report = try GradientCheck.run(graph: result.program.graph, point: point, options: options)
            XCTAssertTrue(report.passed, "\(sample.lastPathComponent): \(report.verdict)\n\(report.table)")
            XCTAssertEqual(report.probes.count, 1 + model.parameters.count)
            // The check measured something: most directions were resolved, with small errors.
            XCTAssertGreaterThan(report.probes.filter(\.resolved).count, report.probes.count / 2, "\(sample.lastPathComponent)\n\(report.table)")
        }
    }

    /// A gradient output replaced by 1.3× itself: the check fails and names that parameter.
    func testCheckFailsOnAScaledGradientAndNamesItsParameter() throws {
        let (program, point) = try Self.tinyModel()
        let wrong = "decoder.h.bias"
        var builder = GraphBuilder(replaying: program.graph)
        let gradient = try XCTUnwrap(program.graph.output(OutputName.gradient(wrong)))
        builder.setOutput(OutputName.gradient(wrong), builder.binary(.multiply, gradient, builder.constant(1.3)))
        let before = (0..<point.parameters.specs.count).map { point.parameters.values($0) }
        let report = try GradientCheck.run(graph: builder.graph, point: point)
        XCTAssertEqual((0..<point.parameters.specs.count).map { point.parameters.values($0) }, before, "the check must restore θ")
        XCTAssertFalse(report.passed)
        XCTAssertEqual(report.worst?.parameter, wrong, report.table)
        XCTAssertTrue(report.verdict.contains("the gradient of '\(wrong)' disagrees"), report.verdict)
        // Only that tensor's own direction (and the ones over all parameters) fail.
        for probe in report.probes where !probe.passed { XCTAssertTrue(probe.parameter == nil || probe.parameter == wrong, report.table) }
        // The unchanged graph passes at the same point, with the same directions.
        XCTAssertTrue(try GradientCheck.run(graph: program.graph, point: point).passed)
    }

    /// A wrong VJP rule inside the backward sweep: relu's derivative step(relu(x)) halved for the
    /// encoder's hidden layer only. The encoder.h gradients go wrong and nothing else does.
    func testCheckFailsOnAWrongRuleInsideTheBackwardSweep() throws {
        let (program, point) = try Self.tinyModel()
        let graph = program.graph
        let relu = try XCTUnwrap(graph.nodes.firstIndex { $0.op == .relu && $0.name == "encoder.h" })
        let step = try XCTUnwrap(graph.nodes.firstIndex { $0.op == .positiveStep && $0.operands == [relu] })
        XCTAssertEqual(NodeRole.of(graph)[step], .gradient)
        let target = graph[step]
        let corrupted = Rewriter.run(graph) { b, node, operands in
            node == target ? b.binary(.multiply, b.unary(.positiveStep, operands[0]), b.constant(0.5)) : nil
        }
        let report = try GradientCheck.run(graph: corrupted, point: point)
        XCTAssertFalse(report.passed)
        let named = try XCTUnwrap(report.worst?.parameter)
        XCTAssertTrue(named.hasPrefix("encoder.h."), "named \(named)\n\(report.table)")
        for probe in report.probes where probe.parameter.map({ !$0.hasPrefix("encoder.h.") }) ?? false {
            XCTAssertTrue(probe.passed, "\(probe.label) should be unaffected\n\(report.table)")
        }
    }

    // MARK: - The command line

    /// The thin CLI over the same functions: exit statuses and the lines a user looks for.
    func testGradAndCheckCommands() throws {
        _ = try VAECProcess.requireBinary()
        let folder = try TestPaths.temporaryFolder(for: self)
        let (model, _) = try Self.overflowModel(in: folder)
        let modelPath = folder.appendingPathComponent("overflow.vae").path

        let grad = try VAECProcess.run(["grad", modelPath, "--rows", "0:3", "--noise", "zero"])
        XCTAssertEqual(grad.status, 0, grad.stderr)
        for spec in model.parameters { XCTAssertTrue(grad.stdout.contains(spec.name), grad.stdout) }
        XCTAssertTrue(grad.stdout.contains("rows 0:3"), grad.stdout)

        let values = try VAECProcess.run(["grad", modelPath, "--values", "--out", folder.appendingPathComponent("g.safetensors").path])
        XCTAssertEqual(values.status, 0, values.stderr)
        XCTAssertTrue(values.stdout.contains("all ") && values.stdout.contains("values are finite"), values.stdout)
        XCTAssertTrue(values.stdout.contains("| min "), values.stdout)
        XCTAssertNotNil(try? SafeTensors.read(path: folder.appendingPathComponent("g.safetensors").path))

        let check = try VAECProcess.run(["check", modelPath, "--directions", "1"])
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
        XCTAssertTrue(check.stdout.contains("gradient check passed"), check.stdout)

        // Without data in the model, check falls back to random data in [0, 1].
        let dataless = folder.appendingPathComponent("dataless.vae")
        try TestModels.mlp(inputs: 5, hidden: 4, latents: 2, train: "batch: 6").write(to: dataless, atomically: true, encoding: .utf8)
        let synthetic = try VAECProcess.run(["check", dataless.path, "--directions", "1"])
        XCTAssertEqual(synthetic.status, 0, synthetic.stdout + synthetic.stderr)
        XCTAssertTrue(synthetic.stdout.contains("rows 0:6 of <synthetic data>") && synthetic.stdout.contains("gradient check passed"), synthetic.stdout)

        let badRows = try VAECProcess.run(["grad", modelPath, "--rows", "5:2"])
        XCTAssertEqual(badRows.status, 1)
        XCTAssertTrue(badRows.stderr.contains("--rows"), badRows.stderr)
        let missing = try VAECProcess.run(["grad", modelPath, "--checkpoint", folder.appendingPathComponent("nope.safetensors").path])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("nope.safetensors"), missing.stderr)
    }

    // MARK: - Helpers

    static let overflowData: [Float] = [0.1, 0.9, 0.3, 0.5, 0.7, 0.2, 0.4, 0.8, 0.6, 0.0, 1.0, 0.25, 0.75, 0.35, 0.65, 0.45]

    /// A tiny model whose decoder is exp(exp(linear(z, 3))), with 4 rows of CSV data beside it.
    static func overflowModel(in folder: URL, scale: String = "1") throws -> (ModelSpec, CompiledProgram) {
        let rows = stride(from: 0, to: overflowData.count, by: 4).map { overflowData[$0..<$0 + 4].map { "\($0)" }.joined(separator: ",") }
        try rows.joined(separator: "\n").write(to: folder.appendingPathComponent("data.csv"), atomically: true, encoding: .utf8)
        let text = """
            model overflow
            input  x: [4]
            latent z: [2] ~ normal(0, 1)

            encoder q(z | x) {
              h = tanh(linear(x, 3))
              z ~ normal(mean: linear(h, 2), logvar: linear(h, 2))
            }

            decoder p(x | z) {
              h = exp(exp(linear(z, 3)))
              x ~ normal(mean: linear(h, 4), sigma: 1)
            }

            train {
              data: csv("data.csv", scale: \(scale))
              batch: 4
              seed: 2
            }

            """
        let path = folder.appendingPathComponent("overflow.vae")
        try text.write(to: path, atomically: true, encoding: .utf8)
        let program = try Compiler.compile(path: path.path).program
        return (program.model, program)
    }

    /// The gradient-check subject: 6 inputs, relu hidden layers of 5, 2 latents, random data in [0, 1].
    static func tinyModel() throws -> (CompiledProgram, EvaluationPoint) {
        let text = TestModels.mlp(inputs: 6, hidden: 5, latents: 2, train: "batch: 8\nseed: 4")
        let program = try Compiler.compile(source: SourceFile(path: "tiny.vae", text: text)).program
        let data = EvaluationPoint.syntheticDataset(for: program.model, rows: 8, seed: 9)
        let point = try EvaluationPoint.load(model: program.model, checkpoint: nil, data: data, rows: nil, noise: .seeded(5))
        return (program, point)
    }

    static func line(of fragment: String, in text: String) -> Int {
        (text.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains(fragment) } ?? -1) + 1
    }
}

// MARK: - A matcher for Grammar/ir.ebnf

/// Matches text against a rule of an EBNF grammar (read by the `EBNF` reader of the grammar tests) by
/// trying every alternative: each rule maps a start position to the set of positions where a match can
/// end, memoised per rule and position. Small and slow, which is fine for dumps of a few hundred lines.
struct IRGrammarMatcher {
    let grammar: EBNF

    func matches(_ text: String, rule: String) -> Bool {
        var run = Run(grammar: grammar, text: Array(text))
        return run.ends(of: .nonterminal(rule), from: 0).contains(run.text.count)
    }

    private struct Run {
        let grammar: EBNF
        let text: [Character]
        var memo: [String: [Int: Set<Int>]] = [:]

        mutating func ends(of node: EBNFNode, from start: Int) -> Set<Int> {
            switch node {
            case .terminal(let t):
                let chars = Array(t)
                guard start + chars.count <= text.count, Array(text[start..<start + chars.count]) == chars else { return [] }
                return [start + chars.count]
            case .nonterminal(let name):
                if let known = memo[name]?[start] { return known }
                guard let rule = grammar.rules[name] else { return [] }
                memo[name, default: [:]][start] = []          // no left recursion in this grammar
                let result = ends(of: rule.body, from: start)
                memo[name, default: [:]][start] = result
                return result
            case .special(let description):
                guard start < text.count else { return [] }
                switch description {
                case "any character but a line break": return text[start] == "\n" ? [] : [start + 1]
                case "a line feed": return text[start] == "\n" ? [start + 1] : []
                default: fatalError("Grammar/ir.ebnf: unknown special sequence '? \(description) ?'")
                }
            case .sequence(let items):
                var positions: Set<Int> = [start]
                for item in items {
                    var next: Set<Int> = []
                    for p in positions { next.formUnion(ends(of: item, from: p)) }
                    positions = next
                    if positions.isEmpty { break }
                }
                return positions
            case .choice(let items):
                var positions: Set<Int> = []
                for item in items { positions.formUnion(ends(of: item, from: start)) }
                return positions
            case .optional(let item):
                return ends(of: item, from: start).union([start])
            case .repetition(let item):
                var all: Set<Int> = [start], frontier: Set<Int> = [start]
                while !frontier.isEmpty {
                    var next: Set<Int> = []
                    for p in frontier { next.formUnion(ends(of: item, from: p)) }
                    frontier = next.subtracting(all)
                    all.formUnion(frontier)
                }
                return all
            case .except(let a, let b):
                let excluded = ends(of: b, from: start)
                return ends(of: a, from: start).subtracting(excluded)
            }
        }
    }
}

// MARK: - A structural reader for DOT

/// Reads the statements of the DOT that `DotWriter` writes: checks that braces and brackets balance and
/// strings close, collects node declarations (id → attribute text), edges and the nodes of each
/// `subgraph cluster_k`, and checks that every edge's ends are declared nodes.
struct DotStructure {
    struct Malformed: Error, CustomStringConvertible { let description: String }
    var nodes: [String: String] = [:]
    var edges: [(from: String, to: String)] = []
    var clusters: [String: [String]] = [:]

    init(_ text: String) throws {
        // Tokens: identifiers, quoted strings (escapes kept), and single-character symbols.
        var tokens: [String] = []
        let chars = Array(text)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c.isWhitespace { i += 1; continue }
            if c == "\"" {
                var j = i + 1
                while j < chars.count, chars[j] != "\"" { j += chars[j] == "\\" ? 2 : 1 }
                guard j < chars.count else { throw Malformed(description: "an unclosed string") }
                tokens.append(String(chars[i...j])); i = j + 1; continue
            }
            if c == "-", i + 1 < chars.count, chars[i + 1] == ">" { tokens.append("->"); i += 2; continue }
            if c.isLetter || c.isNumber || c == "_" || c == "." || c == "#" {
                var j = i
                while j < chars.count, chars[j].isLetter || chars[j].isNumber || chars[j] == "_" || chars[j] == "." || chars[j] == "#" { j += 1 }
                tokens.append(String(chars[i..<j])); i = j; continue
            }
            guard "{}[];=,".contains(c) else { throw Malformed(description: "unexpected '\(c)'") }
            tokens.append(String(c)); i += 1
        }
        var depth = 0, brackets = 0
        for t in tokens {
            if t == "{" { depth += 1 } else if t == "}" { depth -= 1 } else if t == "[" { brackets += 1 } else if t == "]" { brackets -= 1 }
            guard depth >= 0, brackets >= 0, brackets <= 1 else { throw Malformed(description: "unbalanced braces or brackets") }
        }
        guard depth == 0, brackets == 0 else { throw Malformed(description: "unbalanced braces or brackets") }
        guard tokens.count > 3, tokens[0] == "digraph", tokens[2] == "{", tokens.last == "}" else {
            throw Malformed(description: "not 'digraph NAME { … }'")
        }
        // Statements, split at ';' and braces, with the enclosing cluster tracked.
        var cluster: [String?] = [nil]
        var statement: [String] = []
        func finish() throws {
            defer { statement = [] }
            guard let first = statement.first else { return }
            if ["node", "edge", "graph"].contains(first) || statement.count >= 2 && statement[1] == "=" { return }
            if let arrow = statement.firstIndex(of: "->") {
                guard arrow == 1, statement.count >= 3 else { throw Malformed(description: "a malformed edge: \(statement)") }
                edges.append((statement[0], statement[2]))
                return
            }
            guard statement.count == 1 || statement[1] == "[" else { throw Malformed(description: "a malformed node: \(statement)") }
            guard nodes[first] == nil else { throw Malformed(description: "node \(first) declared twice") }
            nodes[first] = statement.dropFirst().joined(separator: " ")
            if let name = cluster.last!, name.hasPrefix("cluster_") { clusters[name, default: []].append(first) }
        }
        var k = 3
        while k < tokens.count - 1 {
            let t = tokens[k]
            if t == "subgraph" {
                try finish()
                cluster.append(tokens[k + 1]); k += 3; continue      // subgraph NAME {
            }
            if t == "}" { try finish(); cluster.removeLast(); k += 1; continue }
            if t == ";" { try finish(); k += 1; continue }
            statement.append(t); k += 1
        }
        try finish()
        for (from, to) in edges {
            guard nodes[from] != nil, nodes[to] != nil else { throw Malformed(description: "edge \(from) -> \(to) has an undeclared end") }
        }
    }
}
