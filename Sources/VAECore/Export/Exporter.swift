import Foundation

/// The frameworks `vaec export` writes for.
public enum ExportTarget: String, CaseIterable, Sendable {
    case pytorch, jax

    var generator: PythonTarget {
        switch self {
        case .pytorch: return PyTorchTarget()
        case .jax: return JAXTarget()
        }
    }
}

/// What a target writes; everything else of the module is shared (`Exporter.module`).
protocol PythonTarget: PythonDialect {
    var title: String { get }
    var target: ExportTarget { get }
    /// Names the generated code uses that a model's names must not shadow.
    var reserved: Set<String> { get }
    var arrays: ArrayDialect { get }
    /// The lines after the module docstring that show how to use it.
    func usage(module: String) -> String
    /// After the standard library's and numpy's (`Exporter.writeImports`).
    var frameworkImports: [String] { get }
    /// The special functions the loss needs (after `Exporter.writeArrayHelpers`).
    func writeHelpers(_ w: PythonWriter, plan: ExportPlan)
    /// The encoder and decoder with their parameters.
    func writeNetwork(_ w: PythonWriter, plan: ExportPlan) throws
    /// `loss_terms` (calling the shared objective) and `loss_and_grads`.
    func writeLossTerms(_ w: PythonWriter, plan: ExportPlan, loss: PythonLoss)
    /// `_numpy_parameters` and `load_vaec_checkpoint` in the target's arrays.
    func writeCheckpointAdapters(_ w: PythonWriter)
    /// The optimizer and `train_step`, then `PythonTraining`'s `evaluate`, `train` and command line.
    func writeTraining(_ w: PythonWriter, plan: ExportPlan)
}

extension PythonTarget {
    var arrayModule: String { arrays.xp }
}

/// Writes a checked model as a Python module for PyTorch or JAX: the encoder and decoder named after the
/// source (locals, layers and parameters keep the model file's names; its comments come along), the loss
/// exactly as vaec compiles it, vaec's checkpoint format both ways, the β schedule and the training step.
public enum Exporter {
    /// The module's source text. `result` is a compiled model file (its syntax tree and checked model).
    public static func module(_ result: Compiler.Result, target: ExportTarget, modelDirectory: String? = nil) throws -> String {
        let generator = target.generator
        let plan = try ExportPlan(result: result, reserved: generator.reserved)
        let model = plan.model
        let w = PythonWriter()
        let moduleName = ((model.sourcePath as NSString).lastPathComponent as NSString).deletingPathExtension
        w.docstring("""
        \(model.name): the model of \((model.sourcePath as NSString).lastPathComponent) for \(generator.title), written by `vaec export --to \(target.rawValue)` (vaec \(VAECVersion.current)).

        The encoder and decoder keep the model file's names (locals, layers, parameters: the keys are vaec's
        checkpoint names, with weights in PyTorch's layouts) and carry its comments. The loss is the one vaec
        compiles, term for term and in float32: likelihood \(model.likelihood.summary), KL \(model.objective.kl.rawValue),
        reconstruction \(model.objective.reconstruction.rawValue), kl_reduction \(model.objective.klReduction.rawValue), batch \(model.objective.batch.rawValue), \(model.objective.beta.summary).
        Re-export rather than edit: `vaec export \((model.sourcePath as NSString).lastPathComponent) --to \(target.rawValue) -o \(moduleName).py`.

        \(generator.usage(module: moduleName))
        """)
        w.blank()
        writeImports(w, generator)
        w.blank(2)
        writeConstants(w, plan: plan, modelDirectory: modelDirectory)
        w.blank(2)
        section(w, "The encoder and decoder")
        try generator.writeNetwork(w, plan: plan)
        w.blank(2)
        section(w, "The loss, as vaec compiles it (Semantics/LossBuilder.swift)")
        writeArrayHelpers(w, xp: generator.arrays.xp)
        generator.writeHelpers(w, plan: plan)
        w.blank(2)
        let loss = PythonLoss(plan: plan, d: generator.arrays)
        loss.writeLikelihood(w)
        w.blank(2)
        loss.writeKL(w)
        w.blank(2)
        generator.writeLossTerms(w, plan: plan, loss: loss)
        w.blank(2)
        section(w, "The weighting schedule")
        loss.writeController(w)
        w.blank(2)
        section(w, "vaec checkpoints (safetensors)")
        w.verbatim(PythonRuntime.checkpoints)
        w.blank(2)
        generator.writeCheckpointAdapters(w)
        w.blank(2)
        section(w, "Data and vaec's random stream")
        w.verbatim(PythonRuntime.data(model.input))
        w.blank(2)
        w.verbatim(PythonRuntime.randomStream(model.input))
        w.blank(2)
        section(w, "Training")
        generator.writeTraining(w, plan: plan)
        if !plan.unplaced.isEmpty {
            w.blank(2)
            w.comment("The model file's closing comments:")
            for c in plan.unplaced { w.comment(c) }
        }
        return w.text
    }

    /// The standard library modules every module imports.
    static let standardModules = ["argparse", "csv", "json", "math", "os", "struct", "time", "zlib"]

    /// Names every module's own code uses (imports, helpers, the likelihood's inputs `p`), which a
    /// model's names must not shadow; each target adds its own.
    static let sharedNames = Set(standardModules).union(["np", "f32", "sum_features", "sum_batch", "p"])

    static func writeImports(_ w: PythonWriter, _ generator: PythonTarget) {
        for module in standardModules { w.line("import \(module)") }
        w.blank()
        w.line("import numpy as np")
        for line in generator.frameworkImports { w.line(line) }
    }

    /// f32, sum_features and sum_batch, spelled alike in torch and jax.numpy.
    static func writeArrayHelpers(_ w: PythonWriter, xp: String) {
        w.verbatim("""
        def f32(v):
            \"\"\"A number as the float32 scalar vaec computes with (hypers are Float in vaec).\"\"\"
            return \(xp).asarray(v, dtype=\(xp).float32)


        def sum_features(t):
            \"\"\"Σ over the feature axes: [batch, …] → [batch] (vaec's sum_features).\"\"\"
            return t.sum(axis=tuple(range(1, t.ndim)))


        def sum_batch(t):
            \"\"\"Σ over the batch axis (vaec's sum_batch).\"\"\"
            return t.sum(axis=0)
        """)
    }

    static func section(_ w: PythonWriter, _ title: String) {
        w.comment("---- \(title) " + String(repeating: "-", count: max(4, 96 - title.count)))
        w.blank()
    }

    /// The model file's declarations and settings as module constants, with their comments.
    static func writeConstants(_ w: PythonWriter, plan: ExportPlan, modelDirectory: String?) {
        let model = plan.model
        section(w, "The model file")
        let directory = modelDirectory ?? (model.sourcePath as NSString).deletingLastPathComponent
        let absolute = directory.hasPrefix("/") ? directory
            : ((FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(directory) as NSString).standardizingPath
        w.line("MODEL_NAME = \(Python.string(model.name))", carrying: plan.carried("model"))
        w.line("MODEL_FILE = \(Python.string((model.sourcePath as NSString).lastPathComponent))")
        w.line("MODEL_DIR = os.environ.get(\"VAEC_MODEL_DIR\", \(Python.string(absolute)))",
               comment: "data paths are relative to it")
        w.line("MODEL_HASH = \(Python.string(ModelIdentity.hash(model)))", comment: "vaec's fingerprint of the model, stored in checkpoints")
        w.line("VAEC_VERSION = \(Python.string(VAECVersion.current))")
        w.blank()
        w.line("INPUT_NAME, INPUT_SHAPE = \(Python.string(model.input.name)), \(Python.tuple(model.input.dims))", carrying: plan.carried("input"))
        w.line("FEATURES = \(model.input.featureCount)")
        w.line("LATENT_NAME, LATENT_SHAPE = \(Python.string(model.latent.name)), \(Python.tuple(model.latent.dims))", carrying: plan.carried("latent"))
        w.line("LATENTS = \(model.latent.featureCount)")
        switch model.latent.prior {
        case .normal(let mean, let std):
            w.line("PRIOR_MEAN, PRIOR_STD = \(Python.number(mean)), \(Python.number(std))", comment: "p(z) = N(mean, std²)")
        case .mixture(let components):
            w.line("PRIOR_COMPONENTS = \(components)", comment: "p(z): a mixture of diagonal Gaussians with learned means, spreads and weights")
        }
        w.blank()
        let objective = model.objective
        w.line("# objective {", carrying: plan.carried("objective"))
        w.line("RECONSTRUCTION = \(Python.string(objective.reconstruction.rawValue))", carrying: plan.carried("objective.reconstruction"))
        w.line("KL = \(Python.string(objective.kl.rawValue))", carrying: plan.carried("objective.kl"))
        w.line("KL_REDUCTION = \(Python.string(objective.klReduction.rawValue))", carrying: plan.carried("objective.kl_reduction"))
        w.line("BATCH = \(Python.string(objective.batch.rawValue))", carrying: plan.carried("objective.batch"))
        let betaWritten = plan.settings["objective.beta"].map { $0 } ?? "beta: 1 (the default)"
        w.line("BETA = \(Python.string(objective.beta.summary))", carrying: plan.carried("objective.beta"))
        w.comment("as written: \(betaWritten); BetaController below sets it step by step")
        var batchLevel: [String] = []
        if case .normal(.optimal) = model.likelihood { batchLevel.append("optimal sigma") }
        switch objective.beta {
        case .freeBits: batchLevel.append("free bits")
        case .capacity: batchLevel.append("capacity")
        default: break
        }
        w.line("BATCH_LEVEL_TERMS = [\(batchLevel.map(Python.string).joined(separator: ", "))]",
               comment: "terms of the batch as a whole, not per example (under DDP: of each process's slice)")
        w.blank()
        let train = model.train
        func source(_ s: DataSource?) -> String {
            guard let s else { return "None" }
            return "(\(Python.string(s.path)), \(Python.string(s.format.rawValue)), \(Python.number(s.scale)))"
        }
        w.line("# train {", carrying: plan.carried("train"))
        w.line("TRAIN = {")
        w.indented {
            w.line("\"data\": \(source(train.data)),", carrying: plan.carried("train.data"))
            w.line("\"test\": \(source(train.test)),", carrying: plan.carried("train.test"))
            let o = train.optimizer
            w.line("\"optimizer\": {\"lr\": \(Python.number(o.learningRate)), \"beta1\": \(Python.number(o.beta1)), \"beta2\": \(Python.number(o.beta2)), \"eps\": \(Python.number(o.epsilon))},",
                   carrying: plan.carried("train.optimizer"))
            w.line("\"batch\": \(train.batch),", carrying: plan.carried("train.batch"))
            w.line("\"epochs\": \(train.epochs),", carrying: plan.carried("train.epochs"))
            w.line("\"seed\": \(train.seed),", carrying: plan.carried("train.seed"))
            let binarize: String = switch train.binarize {
            case .none: "None"
            case .threshold(let t): Python.number(t)
            case .dynamic: "\"dynamic\""
            }
            w.line("\"binarize\": \(binarize),", carrying: plan.carried("train.binarize"))
        }
        w.line("}")
        w.blank()
        w.comment("vaec's parameters in its order: name → (shape, initialisation). Weights are in PyTorch's layouts")
        w.comment("(Linear [out, in], Conv2d [out, in, kh, kw], ConvTranspose2d [in, out, kh, kw]);")
        w.comment("(\"uniform\", b) is U(−b, b) with b = 1/√fan_in, PyTorch's default for these layers.")
        w.line("PARAMETERS = {")
        w.indented {
            for p in model.parameters {
                let initialization: String = switch p.initialization {
                case .uniform(let bound): "(\"uniform\", \(Python.float32(bound)))"
                case .constant(let v): "(\"constant\", \(Python.float32(v)))"
                }
                w.line("\(Python.string(p.name)): (\(p.dims.isEmpty ? "()" : Python.tuple(p.dims)), \(initialization)),")
            }
        }
        w.line("}")
    }
}
