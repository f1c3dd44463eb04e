import Foundation

/// A minimal line chart written as SVG text: axes with tick labels, one polyline per series, a legend.
/// Used for β schedules, training curves and rate–distortion plots; no dependency, well-formed XML.
public struct SVGChart {
    public struct Series {
        public var name: String
        public var points: [(x: Double, y: Double)]
        public var color: String
        public var markers = false
        /// false draws the points only (a scatter plot).
        public var lines = true
        public var markerRadius = 3.0
        /// Text beside each point (e.g. "β = 0.1" on a rate–distortion curve), when given.
        public var pointLabels: [String] = []
        public init(name: String, points: [(x: Double, y: Double)], color: String, markers: Bool = false) {
            self.name = name; self.points = points; self.color = color; self.markers = markers
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series] = []
    public var width = 640.0
    public var height = 360.0

    public init(title: String, xLabel: String, yLabel: String, series: [Series] = []) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.series = series
    }

    public static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]

    public func render() -> String {
        let left = 64.0, right = 16.0, top = 36.0, bottom = 48.0
        let plotWidth = width - left - right, plotHeight = height - top - bottom
        let finite = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        var (x0, x1) = (finite.map(\.x).min() ?? 0, finite.map(\.x).max() ?? 1)
        var (y0, y1) = (finite.map(\.y).min() ?? 0, finite.map(\.y).max() ?? 1)
        if x1 <= x0 { x1 = x0 + 1 }
        if y1 <= y0 { y0 -= 0.5; y1 += 0.5 }
        let pad = (y1 - y0) * 0.05
        y0 -= pad; y1 += pad
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * plotWidth }
        func py(_ y: Double) -> Double { top + (1 - (y - y0) / (y1 - y0)) * plotHeight }

        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(f(width))" height="\(f(height))" viewBox="0 0 \(f(width)) \(f(height))" font-family="sans-serif" font-size="11">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(f(width / 2))" y="20" text-anchor="middle" font-size="14">\(escape(title))</text>
        <rect x="\(f(left))" y="\(f(top))" width="\(f(plotWidth))" height="\(f(plotHeight))" fill="none" stroke="#444"/>

        """
        for tick in ticks(x0, x1) {
            svg += "<line x1=\"\(f(px(tick)))\" y1=\"\(f(top + plotHeight))\" x2=\"\(f(px(tick)))\" y2=\"\(f(top + plotHeight + 4))\" stroke=\"#444\"/>"
            svg += "<text x=\"\(f(px(tick)))\" y=\"\(f(top + plotHeight + 16))\" text-anchor=\"middle\">\(label(tick))</text>\n"
        }
        for tick in ticks(y0, y1) {
            svg += "<line x1=\"\(f(left - 4))\" y1=\"\(f(py(tick)))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(py(tick)))\" stroke=\"#ddd\"/>"
            svg += "<text x=\"\(f(left - 6))\" y=\"\(f(py(tick) + 4))\" text-anchor=\"end\">\(label(tick))</text>\n"
        }
        svg += "<text x=\"\(f(left + plotWidth / 2))\" y=\"\(f(height - 8))\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        svg += "<text transform=\"translate(14 \(f(top + plotHeight / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(yLabel))</text>\n"
        for (index, s) in series.enumerated() {
            let points = s.points.filter { $0.x.isFinite && $0.y.isFinite }
            if s.lines {
                let path = points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
                svg += "<polyline fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"1.5\" points=\"\(path)\"/>\n"
            }
            if s.markers || !s.lines {
                for p in points { svg += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"\(f(s.markerRadius))\" fill=\"\(s.color)\"/>\n" }
            }
            for (p, text) in zip(s.points, s.pointLabels) where p.x.isFinite && p.y.isFinite && !text.isEmpty {
                // Labels of points in the right fifth go to their left, so they stay inside the picture.
                let leftOfPoint = px(p.x) > left + 0.8 * plotWidth
                svg += "<text x=\"\(f(px(p.x) + (leftOfPoint ? -6 : 6)))\" y=\"\(f(py(p.y) - 6))\"\(leftOfPoint ? " text-anchor=\"end\"" : "") fill=\"#333\">\(escape(text))</text>\n"
            }
            let ly = top + 14 + Double(index) * 14
            if s.lines {
                svg += "<line x1=\"\(f(left + plotWidth - 120))\" y1=\"\(f(ly - 4))\" x2=\"\(f(left + plotWidth - 104))\" y2=\"\(f(ly - 4))\" stroke=\"\(s.color)\" stroke-width=\"2\"/>"
            } else {
                svg += "<circle cx=\"\(f(left + plotWidth - 112))\" cy=\"\(f(ly - 4))\" r=\"4\" fill=\"\(s.color)\"/>"
            }
            svg += "<text x=\"\(f(left + plotWidth - 100))\" y=\"\(f(ly))\">\(escape(s.name))</text>\n"
        }
        return svg + "</svg>\n"
    }

    /// About five round tick values covering [lo, hi].
    func ticks(_ lo: Double, _ hi: Double) -> [Double] {
        let raw = (hi - lo) / 5
        let magnitude = Foundation.pow(10, (Foundation.log10(raw)).rounded(.down))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        var values: [Double] = []
        var v = (lo / step).rounded(.up) * step
        while v <= hi + step * 1e-9 && values.count < 20 { values.append(v); v += step }
        return values
    }

    func label(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e6 { return String(Int(v)) }
        return String(format: "%.3g", v)
    }

    func f(_ v: Double) -> String { String(format: "%.1f", v) }

    func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
