import Foundation

/// The rate–distortion plane of a β sweep (Alemi et al. 2018): distortion D (reconstruction) against
/// rate R (KL), one labelled point per β, and the line D + R = best −ELBO of the sweep: points on it
/// are as good as the best as density models and differ only in how they split the bits.
public enum RateDistortionPlot {
    public static func chart(_ points: [BetaSweep.Point], title: String) -> SVGChart {
        let sorted = points.sorted { $0.rate < $1.rate }
        var curve = SVGChart.Series(name: "trained at β", points: sorted.map { (x: $0.rate, y: $0.distortion) },
                                    color: SVGChart.palette[0], markers: true)
        curve.pointLabels = sorted.map { "β = \(WeightingReport.format($0.beta))" }
        var chart = SVGChart(title: title, xLabel: "rate R = KL (nats per example)",
                             yLabel: "distortion D = reconstruction (nats per example)", series: [curve])
        let distortions = points.map(\.distortion)
        if let best = points.map({ $0.evaluation.negativeELBO }).min(), let lo = sorted.first?.rate, let hi = sorted.last?.rate,
           let dLow = distortions.min(), let dHigh = distortions.max() {
            // Clipped to the box the points span, so the reference line does not stretch the axes.
            let from = max(lo, best - dHigh), to = min(hi, best - dLow)
            if from < to {
                let line = [(x: from, y: best - from), (x: to, y: best - to)]
                chart.series.append(SVGChart.Series(name: "D + R = \(String(format: "%.1f", best))", points: line, color: "#999999"))
            }
        }
        chart.width = 680; chart.height = 420
        return chart
    }

    /// The sweep as a table: one row per β.
    public static func table(_ points: [BetaSweep.Point]) -> (header: [String], rows: [[String]]) {
        let header = ["beta", "beta_eff", "rate_kl", "distortion_recon", "neg_elbo", "active_units", "seconds"]
        let rows = points.map { p in
            [WeightingReport.format(p.beta), WeightingReport.format(p.effectiveBeta), String(format: "%.3f", p.rate),
             String(format: "%.3f", p.distortion), String(format: "%.3f", p.evaluation.negativeELBO),
             "\(p.evaluation.activeUnits)/\(p.evaluation.klPerDimension.count)", String(format: "%.1f", p.seconds)]
        }
        return (header, rows)
    }
}
