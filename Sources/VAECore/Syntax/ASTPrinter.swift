/// A deterministic, indented dump of the syntax tree (`vaec compile --dump ast`).
public enum ASTPrinter {
    public static func print(_ file: ModelFile) -> String {
        var out: [String] = []
        if let name = file.modelName { out.append("model \(name.name)") }
        for i in file.inputs { out.append("input \(i.name.name) \(i.shape.dims)") }
        for l in file.latents { out.append("latent \(l.name.name) \(l.shape.dims) ~ \(call(l.prior))") }
        for (kind, blocks) in [("encoder", file.encoders), ("decoder", file.decoders)] {
            for b in blocks {
                out.append("\(kind) \(b.name.name)(\(b.target.name) | \(b.given.name))")
                for s in b.statements {
                    switch s {
                    case .assign(let id, let e): out.append("  assign \(id.name) = \(expression(e))")
                    case .sample(let id, let c): out.append("  sample \(id.name) ~ \(call(c))")
                    }
                }
            }
        }
        for (kind, blocks) in [("objective", file.objectives), ("train", file.trains)] {
            for b in blocks {
                out.append(kind)
                for s in b.settings { out.append("  \(s.key.name): \(expression(s.value))") }
            }
        }
        return out.joined(separator: "\n")
    }

    /// Fully parenthesised, so precedence is visible.
    public static func expression(_ e: Expression) -> String {
        switch e {
        case .number(let v, _): return v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : "\(v)"
        case .string(let s, _): return "\"\(s)\""
        case .name(let id): return id.name
        case .negate(let inner, _): return "(-\(expression(inner)))"
        case .binary(let op, let a, let b): return "(\(expression(a)) \(op.rawValue) \(expression(b)))"
        case .call(let c): return call(c)
        case .list(let items, _): return "[\(items.map(expression).joined(separator: ", "))]"
        }
    }

    static func call(_ c: Call) -> String {
        let args = c.arguments.map { ($0.label.map { "\($0.name): " } ?? "") + expression($0.value) }
        return "\(c.callee.name)(\(args.joined(separator: ", ")))"
    }
}
