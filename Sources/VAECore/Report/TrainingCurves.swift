import Foundation

/// The training curves of a run as SVG charts: −ELBO, reconstruction (distortion), KL (rate) and β,
/// train and test, in nats per example against the training step at the end of each epoch.
public enum TrainingCurves {
    public struct Chart: Sendable {
        public var file: String
        public var title: String
        public var svg: String
    }

    public static func charts(_ history: [EpochReport]) -> [Chart] {
        var steps: [Double] = []
        var total = 0
        for report in history { total += report.steps; steps.append(Double(total)) }
        func series(_ name: String, _ values: [Double?], _ color: String) -> SVGChart.Series? {
            let points = zip(steps, values).compactMap { x, y in y.map { (x: x, y: $0) } }
            guard !points.isEmpty else { return nil }
            // Markers, so a run of one or two epochs still shows its points.
            return SVGChart.Series(name: name, points: points, color: color, markers: true)
        }
        func chart(_ file: String, _ title: String, _ yLabel: String, train: [Double?], test: [Double?]) -> Chart {
            let lines = [series("train", train, SVGChart.palette[0]), series("test", test, SVGChart.palette[1])].compactMap { $0 }
            let svg = SVGChart(title: title, xLabel: "training step", yLabel: yLabel, series: lines).render()
            return Chart(file: file, title: title, svg: svg)
        }
        return [
            chart("curve-elbo.svg", "−ELBO", "nats per example",
                  train: history.map { $0.trainELBO }, test: history.map { $0.testELBO }),
            chart("curve-reconstruction.svg", "Reconstruction (distortion)", "nats per example",
                  train: history.map { $0.trainReconstruction }, test: history.map { $0.testReconstruction }),
            chart("curve-kl.svg", "KL (rate)", "nats per example",
                  train: history.map { $0.trainKL }, test: history.map { $0.testKL }),
            Chart(file: "curve-beta.svg", title: "β in force",
                  svg: SVGChart(title: "β in force (at the end of each epoch)", xLabel: "training step", yLabel: "β",
                                series: [series("β", history.map { $0.beta }, SVGChart.palette[2])].compactMap { $0 }).render()),
        ]
    }
}
