import Foundation
import VAECore

/// `vaec schedule MODEL.vae`: β for every step of the run the train block describes, and an SVG plot.
enum ScheduleCommand {
    static func run(_ words: ArraySlice<String>) throws {
        if words.contains("--help") { print(Help.commands["schedule"]!); return }
        let args = try Arguments(words, valued: ["--svg", "--examples", "--every"], flags: [])
        guard args.positional.count == 1, let path = args.positional.first else {
            throw UsageError("schedule takes one model file: vaec schedule MODEL.vae")
        }
        let model = try Compiler.compile(path: path).model
        let schedule = model.objective.beta
        guard schedule.isFixed else {
            print("\(schedule.summary)\nβ is set by a controller from the losses as it trains, so it has no schedule to print; `vaec run` prints it each epoch.")
            return
        }
        // The number of examples decides the steps per epoch; read it from the data file's header when
        // it is there, else take --examples.
        let examples: Int
        if let given = try args.integer("--examples", in: 1...1_000_000_000) {
            examples = given
        } else if let source = model.train.data {
            let directory = (path as NSString).deletingLastPathComponent
            examples = try Dataset.load(source, relativeTo: directory.isEmpty ? "." : directory, input: model.input).count
        } else {
            throw UsageError("\(path) names no training data; pass --examples N")
        }
        let stepsPerEpoch = examples / model.train.batch
        let total = stepsPerEpoch * model.train.epochs
        let every = try args.integer("--every", in: 1...1_000_000) ?? 1
        print("# \(schedule.summary)")
        print("# \(examples) examples, batch \(model.train.batch): \(stepsPerEpoch) steps per epoch, \(total) steps")
        var points: [(x: Double, y: Double)] = []
        for step in 0..<total {
            let controller = BetaController(schedule: schedule)
            let hypers = controller.hypers(step: step, epoch: step / max(1, stepsPerEpoch), stepsPerEpoch: stepsPerEpoch, totalSteps: total)
            let value: Double
            if case .capacity = schedule { value = hypers["capacity"] ?? 0 } else { value = hypers["beta"] ?? 1 }
            points.append((Double(step), value))
            if step % every == 0 { print("\(step)\t\(WeightingReport.format(value))") }
        }
        let isCapacity: Bool = { if case .capacity = schedule { return true } else { return false } }()
        let svgPath = args.options["--svg"] ?? (path.hasSuffix(".vae") ? String(path.dropLast(4)) : path) + ".schedule.svg"
        let chart = SVGChart(title: "\(model.name): \(schedule.summary)", xLabel: "step",
                             yLabel: isCapacity ? "capacity C (nats)" : "β",
                             series: [.init(name: isCapacity ? "C(t)" : "β(t)", points: points, color: SVGChart.palette[0])])
        try AtomicFile.write(Array(chart.render().utf8), to: svgPath)
        print("# plot: \(svgPath)")
    }
}
