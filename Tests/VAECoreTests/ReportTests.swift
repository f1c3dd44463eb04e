import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import XCTest
@testable import VAECore

/// Issue 6: the PNG files are valid (signature, every chunk's CRC, zlib's Adler-32) and decode to the
/// pixels written; the SVGs are well-formed XML; a report of a real (tiny) run holds every picture and
/// chart and refers only to files beside it; a β sweep writes its table and plot.
final class ReportTests: XCTestCase {
    // MARK: An independent PNG reader (stored deflate blocks only), with its own CRC-32 and Adler-32.

    struct DecodedPNG { var width: Int; var height: Int; var colorType: UInt8; var pixels: [UInt8]; var chunkTypes: [String] }

    enum PNGProblem: Error { case bad(String) }

    /// Bitwise CRC-32 (polynomial 0xEDB88320), written out here rather than taken from `CRC32`.
    static func crc32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            c ^= UInt32(b)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0xEDB8_8320 : c >> 1 }
        }
        return ~c
    }

    static func adler32(_ bytes: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        for x in bytes { a = (a + UInt32(x)) % 65521; b = (b + a) % 65521 }
        return b << 16 | a
    }

    static func bigEndian(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        bytes[at..<at + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }

    static func decodePNG(_ bytes: [UInt8]) throws -> DecodedPNG {
        guard bytes.count > 8, Array(bytes[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] else { throw PNGProblem.bad("signature") }
        var at = 8
        var types: [String] = []
        var header: [UInt8] = [], idat: [UInt8] = []
        while at < bytes.count {
            guard at + 12 <= bytes.count else { throw PNGProblem.bad("truncated chunk") }
            let length = Int(bigEndian(bytes, at))
            guard at + 12 + length <= bytes.count else { throw PNGProblem.bad("chunk longer than the file") }
            let type = String(decoding: bytes[at + 4..<at + 8], as: UTF8.self)
            let data = Array(bytes[at + 8..<at + 8 + length])
            guard crc32(bytes[at + 4..<at + 8 + length]) == bigEndian(bytes, at + 8 + length) else { throw PNGProblem.bad("CRC of \(type)") }
            types.append(type)
            if type == "IHDR" { header = data }
            if type == "IDAT" { idat += data }
            at += 12 + length
        }
        guard types.first == "IHDR", types.last == "IEND", header.count == 13 else { throw PNGProblem.bad("chunk order") }
        let width = Int(bigEndian(header, 0)), height = Int(bigEndian(header, 4))
        guard header[8] == 8, header[10] == 0, header[11] == 0, header[12] == 0 else { throw PNGProblem.bad("header fields") }
        let channels = header[9] == 0 ? 1 : header[9] == 2 ? 3 : 0
        guard channels > 0 else { throw PNGProblem.bad("colour type") }
        // zlib: CMF/FLG, stored blocks, Adler-32.
        guard idat.count >= 6, idat[0] & 0x0F == 8, (Int(idat[0]) * 256 + Int(idat[1])) % 31 == 0, idat[1] & 0x20 == 0 else {
            throw PNGProblem.bad("zlib header")
        }
        var p = 2
        var raw: [UInt8] = []
        var final = false
        while !final {
            guard p + 5 <= idat.count else { throw PNGProblem.bad("truncated deflate block") }
            final = idat[p] & 1 == 1
            guard (idat[p] >> 1) & 3 == 0 else { throw PNGProblem.bad("not a stored block") }
            let len = Int(idat[p + 1]) | Int(idat[p + 2]) << 8
            let nlen = Int(idat[p + 3]) | Int(idat[p + 4]) << 8
            guard len == (~nlen & 0xFFFF) else { throw PNGProblem.bad("LEN/NLEN") }
            guard p + 5 + len <= idat.count else { throw PNGProblem.bad("block longer than the data") }
            raw += idat[p + 5..<p + 5 + len]
            p += 5 + len
        }
        guard p + 4 == idat.count, adler32(raw) == bigEndian(idat, p) else { throw PNGProblem.bad("Adler-32") }
        let rowBytes = width * channels
        guard raw.count == height * (rowBytes + 1) else { throw PNGProblem.bad("scanline count") }
        var pixels: [UInt8] = []
        for y in 0..<height {
            guard raw[y * (rowBytes + 1)] == 0 else { throw PNGProblem.bad("filter type") }
            pixels += raw[y * (rowBytes + 1) + 1..<(y + 1) * (rowBytes + 1)]
        }
        return DecodedPNG(width: width, height: height, colorType: header[9], pixels: pixels, chunkTypes: types)
    }

    static func decodePNG(file: String) throws -> DecodedPNG {
        try decodePNG([UInt8](try XCTUnwrap(FileManager.default.contents(atPath: file))))
    }

    /// Whether an SVG (or any XML) text parses.
    static func assertWellFormedXML(_ text: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let parser = XMLParser(data: Data(text.utf8))
        let ok = parser.parse()
        XCTAssertTrue(ok, "\(what) is not well-formed XML: \(parser.parserError.map { "\($0)" } ?? "?")", file: file, line: line)
    }

    // MARK: PNG

    func testPNGRoundTripsGrayAndRGBPixels() throws {
        var random = RandomSource(seed: 7)
        let cases: [(width: Int, height: Int, color: PNGWriter.ColorType)] = [(5, 3, .gray), (4, 6, .rgb), (1, 1, .gray)]
        for (width, height, color) in cases {
            var pixels: [UInt8] = []
            for _ in 0..<width * height * (color == .gray ? 1 : 3) { pixels.append(UInt8(random.nextIndex(below: 256))) }
            let decoded = try Self.decodePNG(PNGWriter.encode(width: width, height: height, color: color, pixels: pixels))
            XCTAssertEqual(decoded.width, width)
            XCTAssertEqual(decoded.height, height)
            XCTAssertEqual(decoded.colorType, color.rawValue)
            XCTAssertEqual(decoded.pixels, pixels)
            XCTAssertEqual(decoded.chunkTypes, ["IHDR", "IDAT", "IEND"])
        }
    }

    func testPNGLargerThanOneStoredBlockUsesSeveralAndStillDecodes() throws {
        // 300 × 300 gray is 90,300 bytes of scanlines: two stored blocks of at most 65,535.
        let pixels: [UInt8] = (0..<300 * 300).map { (i: Int) -> UInt8 in UInt8((i * 7 + i / 300) % 256) }
        let png = PNGWriter.encode(width: 300, height: 300, color: .gray, pixels: pixels)
        XCTAssertEqual(try Self.decodePNG(png).pixels, pixels)
        // A flipped byte in the pixel data breaks a checksum, and the reader notices.
        var damaged = png
        damaged[damaged.count / 2] ^= 0x40
        XCTAssertThrowsError(try Self.decodePNG(damaged))
    }

    func testRasterMapsValuesLinearlyAndClips() {
        var raster = Raster(width: 4, height: 1)
        raster.drawTile([0, 0.5, 1, 2][...], x: 0, y: 0, tileWidth: 4, tileHeight: 1, range: (0, 1))
        XCTAssertEqual((0..<4).map { raster[$0, 0] }, [0, 128, 255, 255])
        var shifted = Raster(width: 2, height: 1)
        shifted.drawTile([-1, 3][...], x: 0, y: 0, tileWidth: 2, tileHeight: 1, range: (-1, 3))
        XCTAssertEqual([shifted[0, 0], shifted[1, 0]], [0, 255])
    }

    func testImageShapeOfAnExample() {
        XCTAssertTrue(Pictures.imageShape([784]) == (28, 28))
        XCTAssertTrue(Pictures.imageShape([28, 28]) == (28, 28))
        XCTAssertTrue(Pictures.imageShape([12]) == (3, 4))
        XCTAssertTrue(Pictures.imageShape([7]) == (1, 7))
    }

    // MARK: SVG

    func testChartsAreWellFormedXML() {
        var scatter = SVGChart.Series(name: "label <0> & co", points: [(0, 1), (1, 2), (.nan, 3)], color: "#123456")
        scatter.lines = false
        var labelled = SVGChart.Series(name: "β sweep", points: [(1, 5), (2, 3)], color: "#654321", markers: true)
        labelled.pointLabels = ["β = 0.1 \"low\"", "β > 1"]
        Self.assertWellFormedXML(SVGChart(title: "a < b & c", xLabel: "x", yLabel: "y", series: [scatter, labelled]).render(), "scatter")
        Self.assertWellFormedXML(SVGChart(title: "empty", xLabel: "x", yLabel: "y").render(), "an empty chart")
        let history = [EpochReport(epoch: 1, trainReconstruction: 200, trainKL: 10, testReconstruction: 190, testKL: 11, beta: 0.5, seconds: 1, steps: 31),
                       EpochReport(epoch: 2, trainReconstruction: 150, trainKL: 20, testReconstruction: nil, testKL: nil, beta: 1, seconds: 1, steps: 31)]
        let charts = TrainingCurves.charts(history)
        XCTAssertEqual(charts.map(\.file), ["curve-elbo.svg", "curve-reconstruction.svg", "curve-kl.svg", "curve-beta.svg"])
        for chart in charts {
            Self.assertWellFormedXML(chart.svg, chart.file)
            XCTAssertTrue(chart.svg.contains("<circle"), "\(chart.file) shows its points")
        }
        // The −ELBO curve's train points are recon + KL at steps 31 and 62: the y axis spans 170…210.
        XCTAssertTrue(charts[0].svg.contains(">train<") && charts[0].svg.contains(">test<"))
    }

    // MARK: A report of a tiny run

    /// A 4 × 4-pixel data set with a labels file beside it, named as MNIST's are.
    func writeTinyData(in folder: URL, count: Int) throws -> (images: String, labels: [Int]) {
        var random = RandomSource(seed: 3)
        var images: [UInt8] = [0, 0, 8, 3]
        for d in [count, 4, 4] { images += withUnsafeBytes(of: UInt32(d).bigEndian, Array.init) }
        var labelBytes: [UInt8] = [0, 0, 8, 1] + withUnsafeBytes(of: UInt32(count).bigEndian, Array.init)
        var labels: [Int] = []
        for i in 0..<count {
            let label = i % 3
            labels.append(label)
            labelBytes.append(UInt8(label))
            // Each class lights a different band of rows, plus noise.
            for p in 0..<16 { images.append(UInt8(p / 4 == label ? 200 + random.nextIndex(below: 55) : random.nextIndex(below: 40))) }
        }
        let imagesPath = folder.appendingPathComponent("tiny-test-images-idx3-ubyte").path
        try Data(images).write(to: URL(fileURLWithPath: imagesPath))
        try Data(labelBytes).write(to: folder.appendingPathComponent("tiny-test-labels-idx1-ubyte"))
        return (imagesPath, labels)
    }

    func tinyModel(latents: Int) -> String {
        TestModels.mlp(inputs: 16, hidden: 8, latents: latents, train: """
        data: idx("tiny-test-images-idx3-ubyte", scale: 1/255)
        test: idx("tiny-test-images-idx3-ubyte", scale: 1/255)
        batch: 16
        epochs: 2
        """)
    }

    func testReportOfATinyRunHasEveryPictureAndOnlyLocalLinks() throws {
        let folder = try TestPaths.temporaryFolder(for: self)
        let (imagesPath, labels) = try writeTinyData(in: folder, count: 48)
        let modelPath = folder.appendingPathComponent("tiny.vae").path
        let program = try TestModels.compile(tinyModel(latents: 2), path: modelPath).program
        let model = program.model
        let data = try Dataset.load(model.train.data!, relativeTo: folder.path, input: model.input)
        XCTAssertEqual(Labels.forData(data).labels, labels)
        var options = TrainOptions()
        options.log = { _ in }
        let trainer = try Trainer(program: program, train: data, test: data, options: options)
        let history = try trainer.run()
        XCTAssertEqual(history.count, 2)

        let reportFolder = folder.appendingPathComponent("run/report").path
        let written = try RunReport.write(program: program, parameters: trainer.parameters, history: history, data: data,
                                          to: reportFolder, options: .init(iwSamples: 5, threads: 1, checkpoint: "run/checkpoint.safetensors"))
        let html = try String(contentsOfFile: written.index, encoding: .utf8)
        XCTAssertEqual(written.evaluation.examples, 48)
        XCTAssertNotNil(written.evaluation.iwBound)

        // Every file the page refers to exists beside it; nothing is fetched from elsewhere.
        let references = try NSRegularExpression(pattern: "(?:src|href)=\"([^\"]*)\"")
            .matches(in: html, range: NSRange(html.startIndex..., in: html))
            .map { String(html[Range($0.range(at: 1), in: html)!]) }
        XCTAssertTrue(references.contains("reconstructions.png") && references.contains("latent-scatter.svg"), "\(references)")
        for reference in references {
            XCTAssertFalse(reference.contains(":") || reference.hasPrefix("/"), "\(reference) is not a relative path")
            XCTAssertTrue(FileManager.default.fileExists(atPath: (reportFolder as NSString).appendingPathComponent(reference)), reference)
        }
        XCTAssertFalse(html.contains("<script"))
        XCTAssertTrue(html.contains(HTMLReport.escape(WeightingReport.summary(model))))
        XCTAssertTrue(html.contains("encoder q(z | x) {"), "the model file is shown")
        for name in ["curve-elbo.svg", "curve-reconstruction.svg", "curve-kl.svg", "curve-beta.svg", "latent-scatter.svg"] {
            Self.assertWellFormedXML(try String(contentsOfFile: (reportFolder as NSString).appendingPathComponent(name), encoding: .utf8), name)
        }
        // The scatter has one series per label.
        let scatter = try String(contentsOfFile: (reportFolder as NSString).appendingPathComponent("latent-scatter.svg"), encoding: .utf8)
        XCTAssertTrue(scatter.contains(">label 0<") && scatter.contains(">label 2<"))
        XCTAssertEqual(scatter.components(separatedBy: "<circle").count - 1, 48 + 3, "48 points and 3 legend dots")

        // Every PNG decodes; the first input tile of the reconstructions is the first example's pixels.
        for name in ["reconstructions.png", "samples.png", "traversals.png", "latent-grid.png"] {
            let png = try Self.decodePNG(file: (reportFolder as NSString).appendingPathComponent(name))
            XCTAssertGreaterThan(png.width, 4, name)
        }
        let reconstructions = try Self.decodePNG(file: (reportFolder as NSString).appendingPathComponent("reconstructions.png"))
        let raw = [UInt8](try XCTUnwrap(FileManager.default.contents(atPath: imagesPath)))[16...]
        let gap = 2
        for row in 0..<4 {
            for column in 0..<4 {
                let pixel = reconstructions.pixels[(gap + row) * reconstructions.width + gap + column]
                XCTAssertEqual(Int(pixel), Int(raw[raw.startIndex + row * 4 + column]), accuracy: 1, "pixel \(row),\(column)")
            }
        }
        // Traversals: one row of tiles per latent dimension, labelled on the page.
        let traversals = try Self.decodePNG(file: (reportFolder as NSString).appendingPathComponent("traversals.png"))
        XCTAssertEqual(traversals.height, 2 * (4 + gap) + gap)
        XCTAssertTrue(html.contains(">z1  KL"))

        // metrics.json is the eval JSON; model.vaek reads back.
        let metrics = try JSONSerialization.jsonObject(with: try XCTUnwrap(FileManager.default.contents(atPath: (reportFolder as NSString).appendingPathComponent("metrics.json")))) as? [String: Any]
        XCTAssertEqual(metrics?["examples"] as? Int, 48)
        XCTAssertEqual(try CompiledProgram.read(path: (reportFolder as NSString).appendingPathComponent(RunReport.programFileName)).model.name, model.name)
    }

    func testRunHistoryReadsTheTrainingStateBack() throws {
        let folder = try TestPaths.temporaryFolder(for: self)
        _ = try writeTinyData(in: folder, count: 32)
        let program = try TestModels.compile(tinyModel(latents: 3), path: folder.appendingPathComponent("tiny.vae").path).program
        let data = try Dataset.load(program.model.train.data!, relativeTo: folder.path, input: program.model.input)
        var options = TrainOptions()
        options.log = { _ in }
        let trainer = try Trainer(program: program, train: data, test: data, options: options)
        let history = try trainer.run()
        try TrainingState.save(trainer, to: folder.path)
        let read = try XCTUnwrap(try RunHistory.read(directory: folder.path, model: program.model))
        XCTAssertEqual(read.map(\.epoch), history.map(\.epoch))
        XCTAssertEqual(read.map(\.trainReconstruction), history.map(\.trainReconstruction))
        XCTAssertEqual(read.map(\.testKL), history.map(\.testKL))
        XCTAssertNil(try RunHistory.read(directory: folder.appendingPathComponent("nowhere").path, model: program.model))
        // The state of another model is refused.
        let other = try TestModels.compile(tinyModel(latents: 4), path: folder.appendingPathComponent("tiny.vae").path).program
        XCTAssertThrowsError(try RunHistory.read(directory: folder.path, model: other.model))
    }

    // MARK: The commands

    func testEvalCommandPrintsOneJSONObjectAndReportWritesThePage() throws {
        _ = try VAECProcess.requireBinary()
        let folder = try TestPaths.temporaryFolder(for: self)
        _ = try writeTinyData(in: folder, count: 32)
        let modelPath = folder.appendingPathComponent("tiny.vae").path
        try tinyModel(latents: 2).write(toFile: modelPath, atomically: true, encoding: .utf8)
        let program = try TestModels.compile(tinyModel(latents: 2), path: modelPath).program
        let data = try Dataset.load(program.model.train.data!, relativeTo: folder.path, input: program.model.input)
        var options = TrainOptions()
        options.log = { _ in }
        let trainer = try Trainer(program: program, train: data, test: data, options: options)
        try trainer.run()
        let run = folder.appendingPathComponent("run").path
        try TrainingState.save(trainer, to: run)
        let checkpoint = (run as NSString).appendingPathComponent(Checkpoint.fileName)

        let eval = try VAECProcess.run(["eval", modelPath, "--checkpoint", checkpoint, "--iw", "4", "--json"])
        XCTAssertEqual(eval.status, 0, eval.stderr)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any], eval.stdout)
        XCTAssertEqual(Set(object.keys), ["elbo", "reconstruction", "kl", "kl_per_dim", "active_units", "iw_bound", "iw_samples", "examples"])
        XCTAssertEqual(object["examples"] as? Int, 32)
        XCTAssertEqual(object["iw_samples"] as? Int, 4)
        // The same figures as the library computes (same seed).
        let direct = try ModelEvaluator(program: program, parameters: trainer.parameters).evaluate(data, iwSamples: 4, seed: program.model.train.seed)
        XCTAssertEqual(try XCTUnwrap(object["elbo"] as? Double), direct.elbo, accuracy: 1e-6)
        XCTAssertEqual(try XCTUnwrap(object["iw_bound"] as? Double), try XCTUnwrap(direct.iwBound), accuracy: 1e-6)

        let missing = try VAECProcess.run(["eval", modelPath, "--checkpoint", folder.appendingPathComponent("nope.safetensors").path])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("nope.safetensors"), missing.stderr)

        // Without a model and before any report, `vaec report` says what it needs.
        let bare = try VAECProcess.run(["report", "--checkpoint", checkpoint])
        XCTAssertEqual(bare.status, 1)
        XCTAssertTrue(bare.stderr.contains("no model given"), bare.stderr)
        let report = try VAECProcess.run(["report", modelPath, "--checkpoint", checkpoint, "--iw", "2"])
        XCTAssertEqual(report.status, 0, report.stderr)
        let index = (run as NSString).appendingPathComponent("report/index.html")
        XCTAssertTrue(FileManager.default.fileExists(atPath: index))
        // The curves come from the training state beside the checkpoint.
        XCTAssertTrue(try String(contentsOfFile: index, encoding: .utf8).contains("curve-elbo.svg"))
        // Now the saved program lets `vaec report` run without the model.
        let again = try VAECProcess.run(["report", "--checkpoint", checkpoint, "--iw", "0"])
        XCTAssertEqual(again.status, 0, again.stderr)
    }

    // MARK: β sweep

    func testSweepTrainsEachBetaAndWritesTableAndPlot() throws {
        let folder = try TestPaths.temporaryFolder(for: self)
        _ = try writeTinyData(in: folder, count: 32)
        let program = try TestModels.compile(tinyModel(latents: 2), path: folder.appendingPathComponent("tiny.vae").path).program
        let data = try Dataset.load(program.model.train.data!, relativeTo: folder.path, input: program.model.input)
        let out = folder.appendingPathComponent("sweep").path
        let points = try BetaSweep.run(program: program, betas: [0.1, 10], train: data, test: data, epochs: 2,
                                       plan: .init(jobs: 2, threadsPerJob: 1), outDirectory: out, log: { _ in })
        XCTAssertEqual(points.map(\.beta), [0.1, 10])
        // Each training ran at its own β (the history records the β in force).
        XCTAssertEqual(points.map { $0.history.last?.beta }, [0.1, 10])
        for p in points {
            XCTAssertEqual(p.rate + p.distortion, p.evaluation.negativeELBO, accuracy: 1e-9)
            XCTAssertTrue(FileManager.default.fileExists(atPath: (p.directory as NSString).appendingPathComponent("checkpoint.safetensors")))
            XCTAssertTrue(FileManager.default.fileExists(atPath: (p.directory as NSString).appendingPathComponent("report/index.html")))
        }
        // A high β buys a lower rate.
        XCTAssertLessThan(points[1].rate, points[0].rate)
        let written = try SweepReport.write(points, model: program.model, evaluatedOn: data, seconds: 1, to: out)
        let svg = try String(contentsOfFile: written.svg, encoding: .utf8)
        Self.assertWellFormedXML(svg, "rate-distortion.svg")
        XCTAssertTrue(svg.contains("β = 0.1") && svg.contains("β = 10"))
        let csv = try String(contentsOfFile: written.csv, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(csv.count, 3)
        XCTAssertTrue(csv[0].hasPrefix("beta,beta_eff,rate_kl,distortion_recon,neg_elbo"))
    }

    func testSweepRefusesObjectivesWithoutASingleBeta() throws {
        let geco = try TestModels.compile(TestModels.mlp(inputs: 4, hidden: 3, latents: 2, objective: "beta: geco(kappa: 1, alpha: 1e-3, lambda: 1)")).program
        XCTAssertThrowsError(try BetaSweep.program(geco, beta: 1)) { error in
            XCTAssertTrue("\(error)".contains("no single β"), "\(error)")
        }
        let warmup = try TestModels.compile(TestModels.mlp(inputs: 4, hidden: 3, latents: 2, objective: "beta: warmup(max: 4, steps: 2)")).program
        XCTAssertEqual(try BetaSweep.program(warmup, beta: 3).model.objective.beta, .constant(3))
    }
}
