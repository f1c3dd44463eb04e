import Foundation
import VAECore

/// `vaec sweep`: trains a model at several constant β and draws its rate–distortion curve
/// (`BetaSweep` in VAECore/Evaluation, `RateDistortionPlot` in VAECore/Report).
enum SweepCommand {
    static func run(_ words: ArraySlice<String>) throws {
        if words.contains("--help") { print(Help.commands["sweep"]!); return }
        let args = try Arguments(words, valued: ["--beta", "--epochs", "--out", "--jobs", "--threads", "--iw"], flags: [])
        guard args.positional.count == 1, let path = args.positional.first else {
            throw UsageError("sweep takes one model: vaec sweep MODEL.vae --beta 0.1,0.3,1,3,10")
        }
        guard let list = args.options["--beta"] else { throw UsageError("sweep needs the β values: --beta 0.1,0.3,1,3,10") }
        let betas = try list.split(separator: ",", omittingEmptySubsequences: false).map { word -> Double in
            guard let v = Double(word.trimmingCharacters(in: .whitespaces)), v >= 0, v.isFinite else {
                throw UsageError("--beta takes comma-separated numbers ≥ 0, like 0.1,0.3,1,3,10; '\(word)' is not one")
            }
            return v
        }
        guard Set(betas).count == betas.count else { throw UsageError("--beta lists a value twice") }
        let program: CompiledProgram
        if path.hasSuffix(".vaek") {
            program = try CompiledProgram.read(path: path)
        } else {
            program = try Compiler.compile(path: path).program
        }
        let model = program.model
        _ = try BetaSweep.program(program, beta: betas[0])   // refuses objectives without a single β, before any work
        // Measured on this 2-core machine (samples/mnist.vae, 5 β × 3 epochs, three rounds alternating,
        // other work running): two trainings at once with one kernel thread each took 3.9–5.1 s, one at a
        // time with two threads 5.0–5.8 s: the small kernels of a batch of 128 do not keep two cores busy.
        let jobs = try args.integer("--jobs", in: 1...64) ?? 2
        let threads = try args.integer("--threads", in: 1...64) ?? 1
        let epochs = try args.integer("--epochs", in: 1...1_000_000)
        let iw = try args.integer("--iw", in: 0...1_000_000) ?? 0
        let out = args.options["--out"] ?? "runs/\(model.name)-sweep"

        let directory = RunCommand.dataDirectory(for: path, program: program)
        guard let trainSource = model.train.data else {
            throw UsageError("\(path) has no training data: add 'data: idx(\"…\")' to its train block")
        }
        let train = try Dataset.load(trainSource, relativeTo: directory, input: model.input)
        let test = try model.train.test.map { try Dataset.load($0, relativeTo: directory, input: model.input) }
        for data in [train] + (test.map { [$0] } ?? []) { _ = try data.check(against: model.likelihood) }
        print("sweeping \(model.name) over β = \(betas.map(WeightingReport.format).joined(separator: ", ")): \(jobs) training\(jobs == 1 ? "" : "s") at a time, \(threads) thread\(threads == 1 ? "" : "s") each")
        let start = Date()
        let points = try BetaSweep.run(program: program, betas: betas, train: train, test: test, epochs: epochs,
                                       plan: .init(jobs: jobs, threadsPerJob: threads), outDirectory: out, iwSamples: iw,
                                       log: { print($0) })
        let seconds = Date().timeIntervalSince(start)
        let written = try SweepReport.write(points, model: model, evaluatedOn: test ?? train, seconds: seconds, to: out)
        let (header, rows) = RateDistortionPlot.table(points)
        print("")
        print(TextTable.render(header: header, rows: rows))
        print(String(format: "swept in %.1f s; table: %@, plot: %@, page: %@", seconds, written.csv, written.svg, written.html))
    }
}

/// Columns of text aligned for a terminal.
enum TextTable {
    static func render(header: [String], rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { c in all.map { $0[c].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { c, cell in String(repeating: " ", count: widths[c] - cell.count) + cell }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
