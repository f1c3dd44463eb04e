import Foundation
import VAECore

/// `vaec check`: the compiled gradient against central finite differences (`GradientCheck`).
enum CheckCommand {
    static func run(_ words: ArraySlice<String>) throws {
        if words.contains("--help") { print(Help.commands["check"]!); return }
        let args = try Arguments(words, valued: ["--checkpoint", "--data", "--scale", "--rows", "--noise", "--directions",
                                                 "--step", "--tolerance"], flags: [])
        let target = try InspectTarget(args, command: "check")
        let point = try target.point(args, syntheticFallback: true)
        var options = GradientCheck.Options()
        options.directions = try args.integer("--directions", in: 0...100) ?? options.directions
        options.relativeStep = try positive(args, "--step") ?? options.relativeStep
        options.tolerance = try positive(args, "--tolerance") ?? options.tolerance
        print("\(point.model.name): \(point.provenance)")
        let report = try GradientCheck.run(graph: target.program.graph, point: point, options: options)
        print(report.table)
        print(report.verdict)
        if !report.passed { exit(1) }
    }

    static func positive(_ args: Arguments, _ name: String) throws -> Double? {
        guard let text = args.options[name] else { return nil }
        guard let v = Double(text), v > 0, v.isFinite else { throw UsageError("\(name) takes a positive number, not '\(text)'") }
        return v
    }
}
