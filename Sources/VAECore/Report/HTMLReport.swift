import Foundation

/// A self-contained HTML page: inline style, pictures and charts as files beside it referenced by
/// relative paths, no script, no external URL. It opens from disk in any browser.
public struct HTMLReport {
    public struct Section {
        public var heading: String
        /// HTML (already escaped where it holds text).
        public var body: String
        public init(_ heading: String, _ body: String) { self.heading = heading; self.body = body }
    }

    public var title: String
    /// Lines under the title (plain text).
    public var subtitle: [String] = []
    public var sections: [Section] = []

    public init(title: String) { self.title = title }

    /// How many screen pixels a picture's pixel takes.
    public static let pictureScale = 2

    public func render() -> String {
        var html = """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>\(Self.escape(title))</title>
        <style>
        body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px auto; max-width: 1160px; padding: 0 16px; color: #222; }
        h1 { font-size: 26px; margin-bottom: 4px; }
        h2 { font-size: 20px; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 32px; }
        h3 { font-size: 16px; margin: 18px 0 6px; }
        .subtitle { color: #555; margin: 2px 0; font-size: 14px; }
        table { border-collapse: collapse; font-size: 14px; }
        th, td { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: right; }
        th:first-child, td:first-child { text-align: left; }
        .numbers td:first-child { font-weight: 600; }
        .numbers td:last-child { text-align: left; color: #555; }
        .warning { background: #fff4e5; border-left: 4px solid #f0a030; padding: 6px 10px; margin: 6px 0; }
        .curves { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 12px; }
        .curves img { width: 100%; border: 1px solid #eee; }
        figure { margin: 12px 0 20px; }
        figcaption { color: #555; font-size: 13px; max-width: 760px; margin-top: 4px; }
        img.pixels { image-rendering: pixelated; image-rendering: crisp-edges; border: 1px solid #ddd; }
        .rows { display: flex; align-items: flex-start; gap: 10px; }
        .rowlabels { position: relative; font-size: 12px; color: #333; min-width: 150px; }
        .rowlabels div { position: absolute; display: flex; align-items: center; white-space: nowrap; }
        .bar { display: inline-block; height: 10px; background: #1f77b4; vertical-align: middle; }
        .bar.inactive { background: #bbb; }
        pre { background: #f7f7f7; padding: 10px; overflow-x: auto; font-size: 13px; }
        </style>
        </head>
        <body>
        <h1>\(Self.escape(title))</h1>

        """
        for line in subtitle { html += "<p class=\"subtitle\">\(Self.escape(line))</p>\n" }
        for section in sections {
            html += "<h2>\(Self.escape(section.heading))</h2>\n\(section.body)\n"
        }
        return html + "</body>\n</html>\n"
    }

    public static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// A table of text cells (escaped here).
    public static func table(header: [String], rows: [[String]], className: String? = nil) -> String {
        var html = className.map { "<table class=\"\($0)\">" } ?? "<table>"
        if !header.isEmpty { html += "<tr>" + header.map { "<th>\(escape($0))</th>" }.joined() + "</tr>" }
        for row in rows { html += "<tr>" + row.map { "<td>\(escape($0))</td>" }.joined() + "</tr>\n" }
        return html + "</table>"
    }

    /// A picture with its title and caption; PNGs are enlarged with crisp pixels, and a picture with row
    /// labels gets them beside its rows.
    public static func figure(_ p: Picture) -> String {
        let s = pictureScale
        var image: String
        if p.width > 0 {
            image = "<img class=\"pixels\" src=\"\(escape(p.file))\" width=\"\(p.width * s)\" height=\"\(p.height * s)\" alt=\"\(escape(p.title))\">"
        } else {
            image = "<img src=\"\(escape(p.file))\" alt=\"\(escape(p.title))\">"
        }
        if !p.rowLabels.isEmpty {
            var labels = "<div class=\"rowlabels\" style=\"height: \(p.height * s)px\">"
            for (row, text) in p.rowLabels.enumerated() {
                // +1: the image's border.
                let top = (p.firstRow + row * p.rowPitch) * s + 1
                labels += "<div style=\"top: \(top)px; height: \(p.rowHeight * s)px\">\(escape(text))</div>"
            }
            labels += "</div>"
            image = "<div class=\"rows\">\(image)\(labels)</div>"
        }
        return "<figure><h3>\(escape(p.title))</h3>\(image)<figcaption>\(escape(p.caption))</figcaption></figure>"
    }
}
