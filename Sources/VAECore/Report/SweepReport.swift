import Foundation

/// The files of a β sweep: `sweep.csv` (the table), `rate-distortion.svg` (the plot) and `index.html`
/// (both, with links to each β's own report).
public enum SweepReport {
    public struct Written: Sendable { public var csv: String; public var svg: String; public var html: String }

    @discardableResult
    public static func write(_ points: [BetaSweep.Point], model: ModelSpec, evaluatedOn data: Dataset, seconds: Double,
                             to directory: String) throws -> Written {
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        let (header, rows) = RateDistortionPlot.table(points)
        let csv = ([header] + rows).map { $0.joined(separator: ",") }.joined(separator: "\n") + "\n"
        try AtomicFile.write(Array(csv.utf8), to: path("sweep.csv"))
        let chart = RateDistortionPlot.chart(points, title: "Rate–distortion: \(model.name)")
        try AtomicFile.write(Array(chart.render().utf8), to: path("rate-distortion.svg"))

        var page = HTMLReport(title: "vaec β sweep: \(model.name)")
        page.subtitle.append("model \(model.name) from \(model.sourcePath); \(points.count) trainings in \(String(format: "%.1f", seconds)) s")
        page.subtitle.append("rate, distortion and −ELBO measured on \(data.count) examples of \(data.path), in nats per example")
        page.sections.append(.init("Rate and distortion", """
            <p>Each β trades rate (KL, the information the latent carries) against distortion (reconstruction): \
            Alemi et al. (2018). Points on the grey line D + R = const have the same −ELBO.</p>
            <img src="rate-distortion.svg" alt="rate–distortion plot">
            """))
        var table = "<table><tr>" + ["β", "β_eff", "rate (KL)", "distortion (recon)", "−ELBO", "active units", "seconds", "report"]
            .map { "<th>\(HTMLReport.escape($0))</th>" }.joined() + "</tr>"
        for (point, row) in zip(points, rows) {
            let link = BetaSweep.directoryName(beta: point.beta) + "/report/index.html"
            table += "<tr>" + row.map { "<td>\(HTMLReport.escape($0))</td>" }.joined()
            table += "<td><a href=\"\(HTMLReport.escape(link))\">pictures</a></td></tr>\n"
        }
        page.sections.append(.init("By β", table + "</table>"))
        page.sections.append(.init("Objective", "<p>\(HTMLReport.escape(WeightingReport.summary(model))); the sweep replaces its β by each constant.</p>"))
        try AtomicFile.write(Array(page.render().utf8), to: path("index.html"))
        return Written(csv: path("sweep.csv"), svg: path("rate-distortion.svg"), html: path("index.html"))
    }
}
