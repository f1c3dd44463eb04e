import Foundation

/// The report of a training run: `index.html` and the files it shows (training curves as SVG,
/// pictures as PNG and SVG, the metrics as JSON, the compiled model), written into one folder that
/// opens in a browser from disk. `vaec run` writes it into `report/` beside the checkpoint;
/// `vaec report` writes it for a finished run.
public enum RunReport {
    public struct Options: Sendable {
        /// Samples of the importance-weighted bound (0 skips it).
        public var iwSamples = 100
        public var threads = 2
        /// Seed of the evaluation's noise (default: the model's training seed).
        public var seed: UInt64?
        /// The checkpoint the parameters came from, shown in the header.
        public var checkpoint: String?
        public init(iwSamples: Int = 100, threads: Int = 2, seed: UInt64? = nil, checkpoint: String? = nil) {
            self.iwSamples = iwSamples; self.threads = threads; self.seed = seed; self.checkpoint = checkpoint
        }
    }

    /// The report folder of a run whose checkpoint is in `runDirectory`.
    public static func directory(forRun runDirectory: String) -> String {
        (runDirectory as NSString).appendingPathComponent("report")
    }

    /// The compiled model saved in a report folder (`vaec report` reads it when no model is given).
    public static let programFileName = "model.vaek"

    /// What was written: the page and the figures it reports.
    public struct Written: Sendable {
        public var index: String
        public var evaluation: EvaluationResult
    }

    /// Evaluates the model on `data` (the test set, or the training set when there is none), draws the
    /// pictures and curves, and writes the report into `directory`.
    @discardableResult
    public static func write(program: CompiledProgram, parameters: ParameterStore, history: [EpochReport],
                             data: Dataset, to directory: String, options: Options = Options()) throws -> Written {
        let model = program.model
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

        let evaluator = ModelEvaluator(program: program, parameters: parameters, threads: options.threads)
        let start = Date()
        let result = try evaluator.evaluate(data, iwSamples: options.iwSamples, seed: options.seed ?? model.train.seed)
        let evaluationSeconds = Date().timeIntervalSince(start)
        var pictures = Pictures(model: model, decoder: try evaluator.decoder(), data: data, evaluation: result)
        pictures.seed = options.seed ?? model.train.seed
        let figures = try pictures.write(to: directory)
        let curves = TrainingCurves.charts(history)
        for chart in curves { try AtomicFile.write(Array(chart.svg.utf8), to: path(chart.file)) }
        try AtomicFile.write(Array((result.json + "\n").utf8), to: path("metrics.json"))
        try program.write(to: path(programFileName))

        var page = HTMLReport(title: "vaec report: \(model.name)")
        page.subtitle.append("model \(model.name) from \(model.sourcePath)")
        let steps = history.reduce(0) { $0 + $1.steps }, seconds = history.reduce(0) { $0 + $1.seconds }
        var trained = "\(history.count) epoch\(history.count == 1 ? "" : "s"), \(steps) steps"
        if seconds > 0 { trained += String(format: ", %.1f s of training", seconds) }
        if let checkpoint = options.checkpoint { trained = "checkpoint \(checkpoint): " + trained }
        page.subtitle.append(trained)
        page.subtitle.append("evaluated on \(data.count) examples of \(data.path); written by vaec \(VAECVersion.current)")

        page.sections.append(.init("Final numbers", numbers(result, data: data, seconds: evaluationSeconds) + epochTable(history)))
        var objective = "<p>\(HTMLReport.escape(WeightingReport.summary(model))).</p>"
        for warning in WeightingReport.warnings(for: model) { objective += "<p class=\"warning\">\(HTMLReport.escape(warning))</p>" }
        objective += "<p>Likelihood: \(HTMLReport.escape(model.likelihood.summary)); prior: \(HTMLReport.escape(priorText(model.latent.prior))).</p>"
        page.sections.append(.init("Objective", objective))
        if history.isEmpty {
            page.sections.append(.init("Training curves", "<p>No training history was found for this run.</p>"))
        } else {
            let images = curves.map { "<img src=\"\(HTMLReport.escape($0.file))\" alt=\"\(HTMLReport.escape($0.title))\">" }.joined()
            page.sections.append(.init("Training curves", "<p>Per epoch, in nats per example: train figures are averages over the epoch's steps, test figures are measured after it.</p><div class=\"curves\">\(images)</div>"))
        }
        page.sections.append(.init("Pictures", figures.map(HTMLReport.figure).joined(separator: "\n")))
        page.sections.append(.init("KL per latent dimension", klTable(result)))
        page.sections.append(.init("Model file", "<pre>\(HTMLReport.escape(model.sourceText))</pre>"))
        let index = path("index.html")
        try AtomicFile.write(Array(page.render().utf8), to: index)
        return Written(index: index, evaluation: result)
    }

    static func priorText(_ prior: Prior) -> String {
        switch prior {
        case .normal(let mean, let std): return "N(\(WeightingReport.format(mean)), \(WeightingReport.format(std))²)"
        case .mixture(let k): return "a mixture of \(k) learned Gaussians"
        }
    }

    static func numbers(_ r: EvaluationResult, data: Dataset, seconds: Double) -> String {
        func nats(_ v: Double) -> String { String(format: "%.2f", v) }
        var rows: [[String]] = [
            ["−ELBO", nats(r.negativeELBO), "nats per example (\(String(format: "%.4f", r.bitsPerDimension)) bits per dimension)"],
            ["reconstruction (distortion)", nats(r.reconstruction), "E_q[−log p(x|z)], one sample of z per example"],
            ["KL (rate)", nats(r.kl), "KL(q(z|x) ‖ p(z))"],
            ["active units", "\(r.activeUnits) of \(r.klPerDimension.count)", "dimensions with Cov_x E_q[z_j] > \(ActiveUnits.threshold)"],
        ]
        if let bound = r.iwBound {
            rows.append(["−log p(x) ≤", nats(-bound), "importance-weighted bound, K = \(r.iwSamples) (\(nats(bound - r.elbo)) nats above the ELBO)"])
        }
        rows.append(["examples", "\(r.examples)", String(format: "evaluated in %.1f s", seconds)])
        return HTMLReport.table(header: ["", "value", ""], rows: rows, className: "numbers")
    }

    static func epochTable(_ history: [EpochReport]) -> String {
        guard !history.isEmpty else { return "" }
        func v(_ x: Double?) -> String { x.map { String(format: "%.2f", $0) } ?? "–" }
        let rows = history.map { r in
            ["\(r.epoch)", "\(r.steps)", WeightingReport.format(r.beta), v(r.trainELBO), v(r.trainReconstruction), v(r.trainKL),
             v(r.testELBO), v(r.testReconstruction), v(r.testKL), String(format: "%.1f", r.seconds)]
        }
        return "<h3>By epoch</h3>" + HTMLReport.table(header: ["epoch", "steps", "β", "train −ELBO", "recon", "KL",
                                                             "test −ELBO", "recon", "KL", "seconds"], rows: rows)
    }

    static func klTable(_ r: EvaluationResult) -> String {
        let largest = max(r.klPerDimension.max() ?? 0, 1e-9)
        var html = "<table><tr><th>dimension</th><th>KL (nats)</th><th>Cov<sub>x</sub> E<sub>q</sub>[z<sub>j</sub>]</th><th></th></tr>"
        for (j, kl) in r.klPerDimension.enumerated() {
            let active = r.posteriorMeanVariance[j] > ActiveUnits.threshold
            let width = Int((max(kl, 0) / largest * 300).rounded())
            html += "<tr><td>z\(j + 1)</td><td>\(String(format: "%.3f", kl))</td><td>\(String(format: "%.3g", r.posteriorMeanVariance[j]))</td>"
            html += "<td style=\"text-align:left\"><span class=\"bar\(active ? "" : " inactive")\" style=\"width: \(width)px\"></span>\(active ? "" : " inactive")</td></tr>\n"
        }
        return html + "</table>"
    }
}
