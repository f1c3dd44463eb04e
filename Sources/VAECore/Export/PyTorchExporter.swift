/// `vaec export --to pytorch`: a torch.nn.Module whose `state_dict()` keys are vaec's parameter names
/// (nested modules: `encoder.h` is `self.encoder.h`, an nn.Linear), the loss as vaec compiles it, and a
/// training step that runs as is under DistributedDataParallel.
struct PyTorchTarget: PythonTarget {
    let title = "PyTorch"
    let target = ExportTarget.pytorch

    var reserved: Set<String> {
        Exporter.sharedNames.union(["torch", "nn", "F", "self"])
    }

    var arrays: ArrayDialect {
        ArrayDialect(xp: "torch", softplus: "F.softplus", logGamma: "torch.lgamma",
                     clip: { "torch.clamp(\($0), min=\($1), max=\($2))" },
                     maximum: { "torch.clamp(\($1), min=\($0))" })
    }

    // MARK: PythonDialect

    func function(_ name: String, _ argument: String) -> String {
        switch name {
        case "softplus": return "F.softplus(\(argument))"
        default: return "torch.\(name)(\(argument))"
        }
    }

    /// The layer's module applied to the input. Padding PyTorch's layers take (the same zeros on both
    /// sides) is the module's own; TensorFlow's odd zero after is an F.pad before a convolution, and a crop
    /// of the full output after a transposed one.
    func layer(_ layer: LayerPlan, _ input: String) -> String {
        let module = ModuleTree.access(layer.name)
        switch layer.kind {
        case .convolution(let g) where !g.isSymmetric:
            return "\(module)(F.pad(\(input), (\(g.padBefore.width), \(g.padAfter.width), \(g.padBefore.height), \(g.padAfter.height))))"
        case .transposedConvolution(let g) where !g.isSymmetric:
            let (top, left) = (g.padBefore.height, g.padBefore.width)
            return "\(module)(\(input))[:, :, \(top):\(top + g.input.height), \(left):\(left + g.input.width)]"
        case .linear, .convolution, .transposedConvolution:
            return "\(module)(\(input))"
        }
    }

    func flatten(_ input: String) -> String { "torch.flatten(\(input), 1)" }
    func parameter(_ name: String) -> String { ModuleTree.access(name) }

    func usage(module: String) -> String {
        """
            import torch, \(module)
            model = \(module).Model()
            model.load_state_dict(\(module).load_vaec_checkpoint("runs/…/checkpoint.safetensors"))
            terms, grads = \(module).loss_and_grads(model, x, eps, {"beta": 1.0})   # x [B, *INPUT_SHAPE], eps [B, latents]
            \(module).save_vaec_checkpoint("trained.safetensors", model, step=…)    # vaec eval/report read it

            python \(module).py [--epochs N] [--out DIR]     # trains with the model file's recipe
        """
    }

    var frameworkImports: [String] { ["import torch", "import torch.nn as nn", "import torch.nn.functional as F"] }

    func writeNetwork(_ w: PythonWriter, plan: ExportPlan) throws {
        let tree = try ModuleTree(plan: plan)
        w.line("class Model(nn.Module):")
        try w.indented {
            w.docstring("""
            \(plan.model.name): \(plan.encoder.header) and \(plan.decoder.header). state_dict() keys are vaec's
            parameter names (\(plan.model.parameters.prefix(2).map(\.name).joined(separator: ", ")), …), so vaec checkpoints load as they are.
            """)
            w.line("def __init__(self):")
            try w.indented {
                w.line("super().__init__()")
                try tree.writeConstruction(w)
            }
            w.blank()
            PythonNetwork.writeFunction(w, plan.encoder, plan: plan, dialect: self, reserved: reserved,
                                        signature: "def encode(self, \(plan.encoder.argument)):")
            w.blank()
            PythonNetwork.writeFunction(w, plan.decoder, plan: plan, dialect: self, reserved: reserved,
                                        signature: "def decode(self, \(plan.decoder.argument)):")
            w.blank()
            w.line("def forward(self, x, eps, hypers=None):")
            w.indented {
                w.docstring("The loss and vaec's metrics for a batch (see loss_terms); DistributedDataParallel calls this.")
                w.line("return loss_terms(self, x, eps, hypers)")
            }
        }
    }

    func writeHelpers(_ w: PythonWriter, plan: ExportPlan) {
        guard case .continuousBernoulli = plan.model.likelihood else { return }
        w.blank(2)
        w.verbatim("""
        def _cb_log_normalizer(l):
            \"\"\"log C(l) = log(l / tanh(l/2)) in float64, with vaec's thresholds (Runtime/SpecialFunctions.swift):
            log 2 + l²/12 − 7l⁴/1440 for |l| < 1e-2, log |l| beyond 40.\"\"\"
            a = l.abs()
            l2 = l * l
            series = math.log(2) + l2 / 12 - 7 * l2 * l2 / 1440
            safe = torch.where(a < 1e-2, torch.ones_like(a), a)
            middle = torch.log(safe / torch.tanh(safe / 2))
            return torch.where(a < 1e-2, series, torch.where(a > 40, torch.log(safe), middle))


        def _cb_log_normalizer_slope(l):
            \"\"\"d/dl log C(l) = 1/l − 1/sinh l in float64; l/6 − 7l³/360 for |l| < 1e-2, 1/l beyond 700.\"\"\"
            a = l.abs()
            safe = torch.where(a < 1e-2, torch.ones_like(l), l)
            middle = 1 / safe - 1 / torch.sinh(safe)
            return torch.where(a < 1e-2, l / 6 - 7 * l * l * l / 360, torch.where(a > 700, 1 / safe, middle))


        class _CBLogNormalizer(torch.autograd.Function):
            \"\"\"The continuous Bernoulli's log-normaliser as vaec evaluates it: in double, rounded to float32, with
            the derivative vaec's gradient uses (its own op, cb_log_norm_slope, not autograd through the branches).\"\"\"

            @staticmethod
            def forward(ctx, l):
                ctx.save_for_backward(l)
                return _cb_log_normalizer(l.double()).to(l.dtype)

            @staticmethod
            def backward(ctx, g):
                (l,) = ctx.saved_tensors
                return g * _cb_log_normalizer_slope(l.double()).to(l.dtype)


        cb_log_normalizer = _CBLogNormalizer.apply
        """)
    }

    func writeLossTerms(_ w: PythonWriter, plan: ExportPlan, loss: PythonLoss) {
        let model = plan.model
        w.line("def loss_terms(model, x, eps, hypers=None):")
        w.indented {
            w.docstring("""
            The loss and vaec's metrics for a batch x [B, \(model.input.dims.map(String.init).joined(separator: ", "))] and noise eps [B, \(model.latent.featureCount)] (z = μ + σ·ε; eps = 0 gives z = μ).
            hypers: "beta", and for GECO "recon_weight" (λ), for capacity annealing "capacity" (BetaController.hypers).
            Returns {"loss", "reconstruction": Σ_batch −log p(x|z), "kl": Σ_batch KL, "kl_per_dim"}, in nats.
            """)
            w.line("hypers = hypers or {}")
            w.line("inv_batch = f32(1.0) / f32(x.shape[0])", comment: "vaec's 1/batch, in float32")
            w.line("mean, logvar = model.encode(x)")
            w.line("z = mean + torch.exp(0.5 * logvar) * eps", comment: "the reparameterised sample")
            w.line("p = model.decode(z)")
            if case .mixture = model.latent.prior { w.line("params = dict(model.named_parameters())", comment: "the prior's learned parameters") }
            loss.writeObjective(w)
            w.line("return {\"loss\": loss, \"reconstruction\": sum_batch(nll), \"kl\": sum_batch(kl), \"kl_per_dim\": sum_batch(kl_per_dim)}")
        }
        w.blank(2)
        w.verbatim("""
        def loss_and_grads(model, x, eps, hypers=None):
            \"\"\"(terms, gradients): the terms of loss_terms and the gradient of the loss for every parameter, by
            vaec's names: what `vaec grad --out G.safetensors` writes for the same parameters, batch and noise.\"\"\"
            model.zero_grad(set_to_none=True)
            terms = model(x, eps, hypers)
            terms["loss"].backward()
            grads = {name: (p.grad if p.grad is not None else torch.zeros_like(p)).detach().clone()
                     for name, p in model.named_parameters()}
            return {name: value.detach() for name, value in terms.items()}, grads
        """)
    }

    func writeCheckpointAdapters(_ w: PythonWriter) {
        w.verbatim("""
        def _numpy_parameters(params):
            \"\"\"A model (or DistributedDataParallel around one) or a state_dict as numpy arrays by name.\"\"\"
            if isinstance(params, torch.nn.parallel.DistributedDataParallel):
                params = params.module
            if isinstance(params, nn.Module):
                params = params.state_dict()
            return {name: value.detach().cpu().numpy() if torch.is_tensor(value) else np.asarray(value)
                    for name, value in params.items()}


        def load_vaec_checkpoint(path):
            \"\"\"A vaec checkpoint as a state_dict: model.load_state_dict(load_vaec_checkpoint(path)).\"\"\"
            tensors, _ = read_vaec_checkpoint(path)
            return {name: torch.from_numpy(np.array(tensors[name], dtype=np.float32)) for name in PARAMETERS}
        """)
    }

    func writeTraining(_ w: PythonWriter, plan: ExportPlan) {
        w.verbatim("""
        def make_optimizer(model):
            \"\"\"Adam with the train block's settings (vaec's Adam does PyTorch's arithmetic).\"\"\"
            o = TRAIN["optimizer"]
            return torch.optim.Adam(model.parameters(), lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"])


        def train_step(model, optimizer, x, eps, hypers):
            \"\"\"One step: forward, backward, Adam. `model` may be wrapped in DistributedDataParallel.\"\"\"
            optimizer.zero_grad(set_to_none=True)
            terms = model(x, eps, hypers)
            terms["loss"].backward()
            optimizer.step()
            return {name: value.detach() for name, value in terms.items()}
        """)
        w.blank(2)
        PythonTraining.write(w, TrainingSpelling(
            state: "model", array: "torch.from_numpy", evaluateDecorator: "@torch.no_grad()", metrics: "model(x, eps)",
            setup: ["model = Model()",
                    "model.load_state_dict({name: torch.from_numpy(value) for name, value in initial.items()})",
                    "optimizer = make_optimizer(model)"],
            step: "terms = train_step(model, optimizer, x, eps, hypers)"))
    }
}

/// The nesting of modules that gives vaec's names as state_dict keys: `encoder.z.mean.weight` is the
/// weight of `self.encoder.z.mean`, an nn.Linear inside plain nn.Module containers; a container whose
/// children are not attribute names is an nn.ModuleDict (`encoder.h.1`, `encoder.h.2`) or, holding
/// parameters, an nn.ParameterDict (`prior.mean.1`).
struct ModuleTree {
    final class Node {
        var children: [(key: String, node: Node)] = []
        var layer: LayerPlan?
        var parameter: ParameterSpec?
        func child(_ key: String) -> Node {
            if let c = children.first(where: { $0.key == key }) { return c.node }
            let n = Node()
            children.append((key, n))
            return n
        }
        /// A container with a child that is not an attribute name holds its children by key: an
        /// nn.ParameterDict when they are all parameters (`prior.mean.1`), else an nn.ModuleDict.
        var isDictionary: Bool { children.contains { !ModuleTree.isAttribute($0.key) } }
        var holdsParameters: Bool { !children.isEmpty && children.allSatisfy { $0.node.parameter != nil } }
    }

    let root = Node()

    /// torch.nn.Module's own attributes (and ModuleDict's), which a child module's name must not shadow.
    static let torchAttributes: Set<String> = [
        "T_destination", "add_module", "apply", "bfloat16", "bias", "buffers", "call_super_init", "children", "clear",
        "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer",
        "get_extra_state", "get_parameter", "get_submodule", "half", "in_features", "ipu", "items", "keys",
        "load_state_dict", "modules", "mtia", "named_buffers", "named_children", "named_modules", "named_parameters",
        "out_features", "parameters", "pop", "register_backward_hook", "register_buffer", "register_forward_hook",
        "register_forward_pre_hook", "register_full_backward_hook", "register_full_backward_pre_hook",
        "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook", "register_module",
        "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_",
        "reset_parameters", "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty",
        "train", "training", "type", "update", "values", "weight", "xpu", "zero_grad",
        // The generated Model's own methods.
        "encode", "decode",
    ]

    static func isAttribute(_ key: String) -> Bool {
        Python.isIdentifier(key) && !Python.keywords.contains(key) && !torchAttributes.contains(key) && !key.hasPrefix("_")
    }

    init(plan: ExportPlan) throws {
        let layerNames = Set(plan.layers.map(\.name))
        for layer in plan.layers {
            let node = path(layer.name)
            node.layer = layer
        }
        for p in plan.model.parameters {
            let owner = p.name.split(separator: ".").dropLast().joined(separator: ".")
            if layerNames.contains(owner) { continue }
            let node = path(p.name)
            guard node.children.isEmpty, node.layer == nil else {
                throw ExportError("\(plan.source.path): the parameter '\(p.name)' is also the name of a layer, which PyTorch cannot hold; rename the layer")
            }
            node.parameter = p
        }
        try check(root, path: "", plan: plan)
    }

    private func path(_ name: String) -> Node {
        name.split(separator: ".", omittingEmptySubsequences: false).reduce(root) { $0.child(String($1)) }
    }

    /// Every name must be representable: attribute names, or keys of a ModuleDict or ParameterDict that do
    /// not collide with the dictionary's own attributes.
    private func check(_ node: Node, path: String, plan: ExportPlan) throws {
        let dictionary = node !== root && node.layer == nil && node.isDictionary
        if dictionary && !node.holdsParameters && node.children.contains(where: { $0.node.parameter != nil }) {
            throw ExportError("\(plan.source.path): '\(path)' holds both layers and parameters under names that are not Python names, which PyTorch cannot express; rename the layer")
        }
        for (key, child) in node.children {
            let full = path.isEmpty ? key : "\(path).\(key)"
            if !dictionary {
                guard Self.isAttribute(key) else {
                    throw ExportError("\(plan.source.path): '\(full)' cannot be a PyTorch attribute name ('\(key)' is not a Python name or is taken by torch.nn.Module); rename the layer")
                }
            } else if key.isEmpty || key.hasPrefix("_") || Self.torchAttributes.contains(key) {
                throw ExportError("\(plan.source.path): '\(full)' collides with an attribute of PyTorch's module dictionaries; rename the layer")
            }
            try check(child, path: full, plan: plan)
        }
    }

    /// How the generated code reaches a module or parameter: `self.encoder.h`, `self.encoder.h["1"]`.
    static func access(_ name: String) -> String {
        // Containers are dictionaries exactly when a child key is not an attribute name, and the keys of
        // one statement's layers are all digits or all names, so the key itself decides the spelling.
        name.split(separator: ".", omittingEmptySubsequences: false).reduce("self") { prefix, component in
            let key = String(component)
            return isAttribute(key) ? "\(prefix).\(key)" : "\(prefix)[\(Python.string(key))]"
        }
    }

    /// `nn.Linear(784, 400)`, `nn.Conv2d(1, 32, kernel_size=3, stride=2)`: the weight layouts are vaec's.
    /// Symmetric padding is the layer's; asymmetric padding is done in the forward code (`PyTorchTarget.layer`).
    static func construction(_ layer: LayerPlan) -> String {
        func convolution(_ module: String, _ g: ConvGeometry) -> String {
            var arguments = ["\(layer.inputs)", "\(layer.outputs)", "kernel_size=\(g.kernel.compact)"]
            if g.stride != Size2(1, 1) { arguments.append("stride=\(g.stride.compact)") }
            if g.isSymmetric && g.padBefore != Size2(0, 0) { arguments.append("padding=\(g.padBefore.compact)") }
            return "nn.\(module)(\(arguments.joined(separator: ", ")))"
        }
        switch layer.kind {
        case .linear: return "nn.Linear(\(layer.inputs), \(layer.outputs))"
        case .convolution(let g): return convolution("Conv2d", g)
        case .transposedConvolution(let g): return convolution("ConvTranspose2d", g)
        }
    }

    func writeConstruction(_ w: PythonWriter) throws {
        func visit(_ node: Node, _ path: String) {
            for (key, child) in node.children {
                let full = path.isEmpty ? key : "\(path).\(key)"
                let target = Self.access(full)
                if let layer = child.layer {
                    w.line("\(target) = \(Self.construction(layer))", comment: layer.source)
                } else if let p = child.parameter {
                    let shape = p.dims.isEmpty ? "()" : Python.tuple(p.dims)
                    let initial: String = switch p.initialization {
                    case .constant(0): "torch.zeros(\(shape))"
                    case .constant(let v): "torch.full(\(shape), \(Python.float32(v)))"
                    case .uniform(let b): "torch.empty(\(shape)).uniform_(-\(Python.float32(b)), \(Python.float32(b)))"
                    }
                    let isLog = key.hasPrefix("log_") || full.contains(".log_")
                    w.line("\(target) = nn.Parameter(\(initial))", comment: isLog ? "learned, stored as its log" : nil)
                } else {
                    let container = !child.isDictionary ? "nn.Module()" : child.holdsParameters ? "nn.ParameterDict()" : "nn.ModuleDict()"
                    w.line("\(target) = \(container)")
                }
                visit(child, full)
            }
        }
        visit(root, "")
    }
}
