/// Training met a NaN or an infinity in the loss, a metric or a gradient. It says where the first
/// non-finite value of the failing step came from: the IR op (mnemonic and %id) and the source line it
/// was lowered from, found by re-running the step node by node (`Executable.run(inspecting:)`).
public struct NonFiniteValueError: Error, CustomStringConvertible {
    /// What was found non-finite: "the loss", "the gradient of 'encoder.h.weight'", …
    public var quantity: String
    public var value: Float
    /// 1-based step (over the whole run), epoch, and batch within the epoch.
    public var step: Int
    public var epoch: Int
    public var batch: Int
    public var batchesPerEpoch: Int
    public var origin: Origin?

    /// The first node of the step whose value was not finite.
    public struct Origin: Sendable {
        public var node: ValueID
        public var mnemonic: String
        /// The value's source name, when it has one (`encoder.h`, `d(encoder.h)`).
        public var name: String?
        /// Source line (0 when the op has none) and its text.
        public var line: Int
        public var lineText: String
        public var sourcePath: String
        public var value: Float
    }

    public var description: String {
        var text = "training stopped at step \(step) (epoch \(epoch), batch \(batch) of \(batchesPerEpoch)): \(quantity) became \(Self.describe(value))."
        guard let origin else {
            return text + "\nNo op of the step produced a non-finite value when it was run again, so its origin is unknown."
        }
        let named = origin.name.map { " (\($0))" } ?? ""
        text += "\nThe first non-finite value (\(Self.describe(origin.value))) came from %\(origin.node) = \(origin.mnemonic)\(named)"
        if origin.line > 0 {
            text += ", from line \(origin.line) of \(origin.sourcePath):\n    \(origin.lineText.trimmingLeadingSpaces)"
        } else {
            text += ", which the compiler added (it has no source line)."
        }
        return text
    }

    static func describe(_ v: Float) -> String {
        if v.isFinite { return "\(v), too large for the optimizer to square" }
        return v.isNaN ? "NaN" : (v > 0 ? "+Inf" : "-Inf")
    }

    /// Runs the executable again node by node (same bound inputs, noise, parameters and hypers, so the
    /// same values) and returns the first node whose value has a NaN or an infinity.
    static func firstNonFinite(in executable: Executable, model: ModelSpec) -> Origin? {
        var found: (id: ValueID, value: Float)?
        executable.run { id, values in
            guard found == nil else { return }
            if let bad = values.first(where: { !$0.isFinite }) { found = (id, bad) }
        }
        guard let found else { return nil }
        let node = executable.graph[found.id]
        let source = SourceFile(path: model.sourcePath, text: model.sourceText)
        return Origin(node: found.id, mnemonic: node.op.mnemonic, name: node.name, line: node.line,
                      lineText: node.line > 0 ? source.lineText(node.line) : "", sourcePath: model.sourcePath,
                      value: found.value)
    }
}

extension String {
    fileprivate var trimmingLeadingSpaces: String { String(drop { $0 == " " || $0 == "\t" }) }
}
