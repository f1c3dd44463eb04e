/// The encoder's and decoder's bodies, the same for every target but for how terms are spelled: one
/// Python line per statement of the model file, under the statement's own name, with its comments.
enum PythonNetwork {
    /// Writes `signature` and its body: `encode` returns the posterior's mean and log-variance,
    /// `decode` a dict of the likelihood's inputs.
    static func writeFunction(_ w: PythonWriter, _ block: BlockPlan, plan: ExportPlan, dialect: PythonDialect,
                              reserved: Set<String>, signature: String) {
        w.line(signature)
        w.indented {
            let returns = block.kind == "encoder"
                ? "the posterior's mean and log-variance [batch, \(plan.model.latent.featureCount)]"
                : "the inputs of the likelihood \(plan.model.likelihood.summary), by name"
            w.docstring("\(block.header): \(returns).")
            let header = plan.carried(block.kind)
            for c in header.before { w.comment(c) }
            if let t = header.trailing { w.comment("\(block.header) { — \(t)") }
            var taken = Set(block.statements.compactMap { s -> String? in
                if case .assign(let name, _) = s.kind { return name }
                return nil
            }).union([block.argument]).union(reserved)
            for statement in block.statements {
                var comments = plan.carried(statement.anchor)
                comments.before += statement.notes
                switch statement.kind {
                case .assign(let name, let term):
                    w.line("\(name) = \(term.render(dialect))", carrying: comments)
                case .posterior(let mean, let logVariance):
                    let latent = plan.model.latent.name
                    let meanName = Python.name("\(latent)_mean", avoiding: taken)
                    taken.insert(meanName)
                    let logvarName = Python.name("\(latent)_logvar", avoiding: taken)
                    for c in comments.before { w.comment(c) }
                    w.line("\(meanName) = \(mean.render(dialect))", comment: comments.trailing ?? statement.source)
                    w.line("\(logvarName) = \(logVariance.render(dialect))")
                    w.line("return \(meanName), \(logvarName)")
                case .likelihood(let terms):
                    for c in comments.before { w.comment(c) }
                    w.line("return {", comment: comments.trailing ?? statement.source)
                    w.indented {
                        for (label, term) in terms { w.line("\(Python.string(label)): \(term.render(dialect)),") }
                    }
                    w.line("}")
                }
            }
        }
    }
}
