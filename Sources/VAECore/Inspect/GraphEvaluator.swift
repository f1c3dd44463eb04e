import Foundation

/// Runs a compiled graph once at an `EvaluationPoint`: the engine behind `vaec grad` and `vaec check`.
/// Parameters are bound to the point's store (no copy), so a caller that changes the store's values
/// (as the gradient check does) evaluates at the new point on the next run.
public final class GraphEvaluator {
    public let graph: Graph
    public let point: EvaluationPoint
    public let outputs: [String]
    let executable: Executable

    /// `outputs` names the graph outputs to compute (only the nodes they need are scheduled).
    public init(graph: Graph, point: EvaluationPoint, outputs: [String]) throws {
        let model = point.model
        for name in outputs where graph.output(name) == nil {
            throw VAECError.usage("the compiled graph has no output '\(name)'")
        }
        self.graph = graph
        self.point = point
        self.outputs = outputs
        executable = Executable(graph: graph, outputs: outputs, batch: point.batch)
        var bound: Set<ValueID> = []
        for (index, spec) in model.parameters.enumerated() {
            if let id = executable.uses(.parameter(spec.name)) {
                executable.bind(id, to: point.parameters.pointers[index]); bound.insert(id)
            }
        }
        if let id = executable.uses(.input(model.input.name)) {
            executable.bind(id, to: Self.copy(point.input, adoptedBy: executable))
        }
        if let id = executable.uses(.noise(model.latent.name)) {
            executable.bind(id, to: Self.copy(point.noise, adoptedBy: executable))
        }
        for (name, id) in executable.leaves(where: { if case .parameter(let n) = $0 { n } else { nil } }) where !bound.contains(id) {
            throw VAECError.usage("the compiled graph reads parameter '\(name)', which model '\(model.name)' does not declare")
        }
        for (name, _) in executable.leaves(where: { if case .hyper(let n) = $0 { n } else { nil } }) {
            guard let value = point.hypers[name] else {
                throw VAECError.usage("the compiled graph reads the hyper-parameter '\(name)', which vaec does not know how to set here")
            }
            executable.setHyper(name, value)
        }
    }

    /// The names of the hyper-parameters the scheduled graph reads, sorted.
    public var hypersRead: [String] {
        executable.leaves(where: { if case .hyper(let n) = $0 { n } else { nil } }).map(\.name).sorted()
    }

    /// The gradient outputs, in the model's parameter order.
    public static func gradientOutputs(of model: ModelSpec) -> [String] {
        model.parameters.map { OutputName.gradient($0.name) }
    }

    public func run() { executable.run() }

    /// The values of an output after `run`.
    public func values(_ output: String) -> [Float] {
        guard let pointer = executable.value(output) else { return [] }
        return Array(UnsafeBufferPointer(start: pointer, count: executable.elementCount(of: output)))
    }

    public func scalar(_ output: String) -> Float { executable.scalar(output) }

    /// Runs the graph and summarises every scheduled value, in schedule order.
    public func trace() -> ValueTrace {
        var entries: [ValueTrace.Entry] = []
        executable.run { id, values in
            entries.append(ValueTrace.Entry(id: id, node: graph[id], statistics: ValueStatistics(values)))
        }
        return ValueTrace(entries: entries, source: SourceFile(path: point.model.sourcePath, text: point.model.sourceText))
    }

    /// A Float buffer holding `values`, freed with the executable.
    private static func copy(_ values: [Float], adoptedBy executable: Executable) -> UnsafeMutablePointer<Float> {
        let pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(values.count, 1))
        pointer.initialize(repeating: 0, count: max(values.count, 1))
        if !values.isEmpty { values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) } }
        executable.adopt(pointer)
        return pointer
    }
}
