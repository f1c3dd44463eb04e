import Foundation

/// `vaec grad` without `--values`: the loss at a point and the gradient of every parameter, as a table
/// of norms or as a safetensors file under the parameters' own names (so it can be compared with
/// `{n: p.grad for n, p in model.named_parameters()}` from PyTorch, in the same [out, in] layout).
public struct GradientReport {
    public struct Gradient {
        public var parameter: ParameterSpec
        public var values: [Float]
        public var statistics: ValueStatistics { ValueStatistics(values) }
        public var norm: Double { values.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot() }
    }

    public var point: EvaluationPoint
    /// The loss (the differentiated objective) and, per example, the reconstruction and KL in nats.
    public var loss: Float
    public var reconstructionPerExample: Float?
    public var klPerExample: Float?
    public var gradients: [Gradient]
    /// The hyper-parameters the graph read, with the values they were given.
    public var hypers: [(name: String, value: Float)]

    public static func evaluate(graph: Graph, point: EvaluationPoint) throws -> GradientReport {
        let model = point.model
        let metrics = [OutputName.reconstruction, OutputName.kl].filter { graph.output($0) != nil }
        let evaluator = try GraphEvaluator(graph: graph, point: point,
                                           outputs: [OutputName.loss] + metrics + GraphEvaluator.gradientOutputs(of: model))
        evaluator.run()
        let perExample = { (name: String) -> Float? in
            metrics.contains(name) ? evaluator.scalar(name) / Float(point.batch) : nil
        }
        return GradientReport(point: point, loss: evaluator.scalar(OutputName.loss),
                              reconstructionPerExample: perExample(OutputName.reconstruction),
                              klPerExample: perExample(OutputName.kl),
                              gradients: model.parameters.map { Gradient(parameter: $0, values: evaluator.values(OutputName.gradient($0.name))) },
                              hypers: evaluator.hypersRead.map { ($0, point.hypers[$0]!) })
    }

    public var summary: String {
        var line = "loss \(Self.number(Double(loss)))"
        if let r = reconstructionPerExample, let k = klPerExample {
            line += " (reconstruction \(Self.number(Double(r))), KL \(Self.number(Double(k))) nats per example)"
        }
        guard !hypers.isEmpty else { return line }
        return line + "; " + hypers.map { "\($0.name) = \(Self.number(Double($0.value)))" }.joined(separator: ", ")
    }

    /// One row per parameter: shape, L2 norm, largest |g| and the count of non-finite entries.
    public var table: String {
        let nameWidth = max(9, gradients.map(\.parameter.name.count).max() ?? 0) + 2
        func pad(_ s: String, _ n: Int) -> String { s.padding(toLength: max(n, s.count + 1), withPad: " ", startingAt: 0) }
        var lines = [pad("parameter", nameWidth) + pad("shape", 12) + pad("‖grad‖₂", 14) + pad("max |grad|", 14) + "non-finite"]
        var total = 0.0
        for g in gradients {
            let s = g.statistics
            let largest = max(Swift.abs(Double(s.min)), Swift.abs(Double(s.max)))
            lines.append(pad(g.parameter.name, nameWidth) + pad("\(g.parameter.dims)", 12) + pad(Self.number(g.norm), 14)
                         + pad(Self.number(largest), 14) + "\(s.nanCount + s.infCount)")
            total += g.norm * g.norm
        }
        lines.append(pad("all", nameWidth) + pad("", 12) + Self.number(total.squareRoot()))
        return lines.joined(separator: "\n")
    }

    /// Writes the gradients as F32 tensors named after the parameters; refuses a non-finite gradient
    /// (safetensors readers would take it, but it is never what the user wanted to compare).
    public func write(to path: String) throws {
        if let bad = gradients.first(where: { !$0.statistics.isFinite }) {
            throw VAECError.data("the gradient of '\(bad.parameter.name)' holds NaN or Inf, so \(path) was not written; 'vaec grad --values' shows where it starts")
        }
        var file = SafeTensors()
        for g in gradients { file.tensors[g.parameter.name] = SafeTensors.Tensor(shape: g.parameter.dims, values: g.values) }
        file.metadata = ["format": "vaec-gradients", "vaec_version": VAECVersion.current, "model": point.model.name,
                         "loss": "\(loss)", "rows": "\(point.rows.lowerBound):\(point.rows.upperBound)", "source": point.provenance]
        // What another framework needs to recompute the same loss (scripts/export/equivalence.py reads them).
        file.metadata["hypers"] = hypers.map { "\($0.name)=\($0.value)" }.joined(separator: ",")
        if let r = reconstructionPerExample, let k = klPerExample { (file.metadata["reconstruction"], file.metadata["kl"]) = ("\(r)", "\(k)") }
        try file.write(to: path)
    }

    static func number(_ v: Double) -> String { ValueStatistics.number(v) }
}
