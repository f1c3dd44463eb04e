/// `vaec export --to jax`: the parameters as one flat dict keyed by vaec's names (a pytree, ready for
/// jax.jit, pjit or sharding), pure encode/decode/loss functions, and a jitted Adam step.
struct JAXTarget: PythonTarget {
    let title = "JAX"
    let target = ExportTarget.jax

    var reserved: Set<String> {
        Exporter.sharedNames.union(["jax", "jnp", "params", "linear", "conv2d", "conv_transpose2d", "flatten"])
    }

    var arrays: ArrayDialect {
        ArrayDialect(xp: "jnp", softplus: "jax.nn.softplus", logGamma: "jax.scipy.special.gammaln",
                     clip: { "jnp.clip(\($0), \($1), \($2))" },
                     maximum: { "jnp.maximum(\($0), \($1))" })
    }

    // MARK: PythonDialect

    func function(_ name: String, _ argument: String) -> String {
        switch name {
        case "relu", "sigmoid", "softplus": return "jax.nn.\(name)(\(argument))"
        default: return "jnp.\(name)(\(argument))"
        }
    }

    func layer(_ layer: LayerPlan, _ input: String) -> String {
        let name = Python.string(layer.name)
        switch layer.kind {
        case .linear: return "linear(params, \(name), \(input))"
        case .convolution(let g):
            return "conv2d(params, \(name), \(input), stride=\(g.stride.pair), padding=\(Self.padding(g)))"
        case .transposedConvolution(let g):
            return "conv_transpose2d(params, \(name), \(input), stride=\(g.stride.pair), padding=\(Self.padding(g)))"
        }
    }

    /// ((top, bottom), (left, right)): lax's explicit padding.
    static func padding(_ g: ConvGeometry) -> String {
        "((\(g.padBefore.height), \(g.padAfter.height)), (\(g.padBefore.width), \(g.padAfter.width)))"
    }

    func flatten(_ input: String) -> String { "flatten(\(input))" }
    func parameter(_ name: String) -> String { "params[\(Python.string(name))]" }

    func usage(module: String) -> String {
        """
            import jax, \(module)
            params = \(module).load_vaec_checkpoint("runs/…/checkpoint.safetensors")   # {name: array}, a pytree
            terms, grads = \(module).loss_and_grads(params, x, eps, {"beta": 1.0})    # x [B, *INPUT_SHAPE], eps [B, latents]
            opt_state = \(module).adam_init(params)
            params, opt_state, terms = \(module).train_step(params, opt_state, x, eps, hypers)
            \(module).save_vaec_checkpoint("trained.safetensors", params, step=…)     # vaec eval/report read it

            python \(module).py [--epochs N] [--out DIR]     # trains with the model file's recipe
        """
    }

    var frameworkImports: [String] { ["import jax", "import jax.numpy as jnp", "import jax.scipy.special"] }

    func writeNetwork(_ w: PythonWriter, plan: ExportPlan) throws {
        w.verbatim("""
        def init_params(key):
            \"\"\"Parameters initialised as vaec does (U(−b, b), b = 1/√fan_in for layers; learned log-scales 0),
            as a dict by vaec's names.\"\"\"
            params = {}
            for name, (shape, (kind, value)) in PARAMETERS.items():
                key, sub = jax.random.split(key)
                if kind == "uniform":
                    params[name] = jax.random.uniform(sub, shape, jnp.float32, -value, value)
                else:
                    params[name] = jnp.full(shape, value, jnp.float32)
            return params


        def linear(params, name, x):
            \"\"\"A dense layer with bias in PyTorch's layout: x·Wᵀ + b, W [out, in] = params[name + ".weight"].\"\"\"
            return x @ params[name + ".weight"].T + params[name + ".bias"]
        """)
        if plan.layers.contains(where: { $0.geometry != nil }) {
            w.blank(2)
            w.verbatim(Self.imageHelpers)
        }
        w.blank(2)
        PythonNetwork.writeFunction(w, plan.encoder, plan: plan, dialect: self, reserved: reserved,
                                    signature: "def encode(params, \(plan.encoder.argument)):")
        w.blank(2)
        PythonNetwork.writeFunction(w, plan.decoder, plan: plan, dialect: self, reserved: reserved,
                                    signature: "def decode(params, \(plan.decoder.argument)):")
    }

    /// Convolutions in PyTorch's layouts (images [B, C, H, W], weights as Conv2d's and ConvTranspose2d's)
    /// with explicit zero padding, and PyTorch's flatten.
    static let imageHelpers = """
    def conv2d(params, name, x, stride, padding):
        \"\"\"PyTorch's Conv2d: x [B, Ci, H, W] ⊛ W [Co, Ci, kh, kw] + b [Co], W = params[name + ".weight"], with
        `padding` ((top, bottom), (left, right)) zeros around x.\"\"\"
        y = jax.lax.conv_general_dilated(x, params[name + ".weight"], window_strides=stride, padding=padding,
                                         dimension_numbers=("NCHW", "OIHW", "NCHW"))
        return y + params[name + ".bias"].reshape(1, -1, 1, 1)


    def conv_transpose2d(params, name, x, stride, padding):
        \"\"\"PyTorch's ConvTranspose2d (W [Ci, Co, kh, kw]) + b: the exact adjoint of the convolution with this
        stride and `padding` ((top, bottom), (left, right)), i.e. x spread out by the stride (lhs_dilation) and
        correlated with the flipped kernel, padded by kernel − 1 − padding on each side.\"\"\"
        w = params[name + ".weight"]
        kh, kw = w.shape[2], w.shape[3]
        (top, bottom), (left, right) = padding
        y = jax.lax.conv_general_dilated(x, jnp.flip(w, (2, 3)), window_strides=(1, 1),
                                         padding=((kh - 1 - top, kh - 1 - bottom), (kw - 1 - left, kw - 1 - right)),
                                         lhs_dilation=stride, dimension_numbers=("NCHW", "IOHW", "NCHW"))
        return y + params[name + ".bias"].reshape(1, -1, 1, 1)


    def flatten(x):
        \"\"\"[B, C, H, W] → [B, C·H·W] in PyTorch's order (x.flatten(1)).\"\"\"
        return x.reshape(x.shape[0], -1)
    """

    func writeHelpers(_ w: PythonWriter, plan: ExportPlan) {
        guard case .continuousBernoulli = plan.model.likelihood else { return }
        w.blank(2)
        // JAX computes in float32 (double needs jax_enable_x64, a global switch), and XLA's tanh and expm1
        // round with a bias (about −0.05 ulp on average) that 784 pixels × a batch add up to more than 1e-5 of a
        // continuous Bernoulli loss near zero. So below |l| = 1 both functions are the convergent series
        // (float32 rounding, no bias), above it exp(−a) forms without cancellation.
        w.verbatim("""
        # 1/l − 1/sinh l = Σ_n d_n l^(2n−1) with d_n = 2(2^(2n−1) − 1)·B_2n/(2n)! (B: the Bernoulli numbers), and
        # log C(l) = log 2 + Σ_n d_n l^(2n)/(2n); for |l| < 1 nine terms reach float32's precision.
        _CB_SLOPE_SERIES = (1 / 6, -7 / 360, 31 / 15120, -127 / 604800, 73 / 3421440, -1414477 / 653837184000,
                            8191 / 37362124800, -16931177 / 762187345920000, 5749691557 / 2554547108585472000)
        _CB_LOG_SERIES = tuple(d / (2 * n) for n, d in enumerate(_CB_SLOPE_SERIES, 1))
        # log 2 as float32 plus the remainder: float32(log 2) is 1.9e-9 too large, a bias that vaec (which adds
        # in double and rounds once) does not have and that 784 features times a batch would add up.
        _LOG2_HI = float(np.float32(math.log(2)))
        _LOG2_LO = math.log(2) - _LOG2_HI


        def _horner(u, coefficients):
            \"\"\"Σ_k c_k u^k.\"\"\"
            total = 0.0
            for c in reversed(coefficients):
                total = total * u + c
            return total


        @jax.custom_jvp
        def cb_log_normalizer(l):
            \"\"\"log C(l) = log(l / tanh(l/2)) with vaec's branches (Runtime/SpecialFunctions.swift): its series
            log 2 + l²/12 − 7l⁴/1440 for |l| < 1e-2 and log |l| beyond 40; in between the longer series below 1
            and log(a + 2a/(eᵃ − 1)) (a = |l|, the same value) above. The derivative is vaec's, not autograd
            through the branches.\"\"\"
            a = jnp.abs(l)
            l2 = l * l
            tiny = _LOG2_HI + (_LOG2_LO + (l2 / 12 - 7 * l2 * l2 / 1440))
            small = _LOG2_HI + (_LOG2_LO + l2 * _horner(l2, _CB_LOG_SERIES))
            big = jnp.maximum(a, 1.0)
            middle = jnp.log(big + 2 * big / (jnp.exp(big) - 1))
            return jnp.where(a < 1e-2, tiny, jnp.where(a < 1, small, jnp.where(a > 40, jnp.log(big), middle)))


        def cb_log_normalizer_slope(l):
            \"\"\"d/dl log C(l) = 1/l − 1/sinh l: vaec's l/6 − 7l³/360 for |l| < 1e-2, the series below 1, and
            1/l − 2e^(−a)/(1 − e^(−2a)) with the sign of l above (a = |l|).\"\"\"
            a = jnp.abs(l)
            tiny = l / 6 - 7 * l * l * l / 360
            small = l * _horner(l * l, _CB_SLOPE_SERIES)
            big = jnp.maximum(a, 1.0)
            e = jnp.exp(-big)
            middle = jnp.sign(l) * (1 / big - 2 * e / (1 - e * e))
            return jnp.where(a < 1e-2, tiny, jnp.where(a < 1, small, middle))


        @cb_log_normalizer.defjvp
        def _cb_log_normalizer_jvp(primals, tangents):
            (l,), (dl,) = primals, tangents
            return cb_log_normalizer(l), cb_log_normalizer_slope(l) * dl
        """)
    }

    func writeLossTerms(_ w: PythonWriter, plan: ExportPlan, loss: PythonLoss) {
        let model = plan.model
        w.line("def loss_terms(params, x, eps, hypers=None):")
        w.indented {
            w.docstring("""
            (loss, metrics) for a batch x [B, \(model.input.dims.map(String.init).joined(separator: ", "))] and noise eps [B, \(model.latent.featureCount)] (z = μ + σ·ε; eps = 0 gives z = μ).
            hypers: "beta", and for GECO "recon_weight" (λ), for capacity annealing "capacity" (BetaController.hypers).
            metrics: "reconstruction": Σ_batch −log p(x|z), "kl": Σ_batch KL, "kl_per_dim", in nats.
            """)
            w.line("hypers = hypers or {}")
            w.line("inv_batch = f32(1.0) / f32(x.shape[0])", comment: "vaec's 1/batch, in float32")
            w.line("mean, logvar = encode(params, x)")
            w.line("z = mean + jnp.exp(0.5 * logvar) * eps", comment: "the reparameterised sample")
            w.line("p = decode(params, z)")
            loss.writeObjective(w)
            w.line("return loss, {\"reconstruction\": sum_batch(nll), \"kl\": sum_batch(kl), \"kl_per_dim\": sum_batch(kl_per_dim)}")
        }
        w.blank(2)
        w.verbatim("""
        def loss_and_grads(params, x, eps, hypers=None):
            \"\"\"(terms, gradients): {"loss", "reconstruction", "kl", "kl_per_dim"} and the gradient of the loss by
            vaec's names: what `vaec grad --out G.safetensors` writes for the same parameters, batch and noise.\"\"\"
            (loss, metrics), grads = jax.value_and_grad(loss_terms, has_aux=True)(params, x, eps, hypers)
            return dict(metrics, loss=loss), grads
        """)
    }

    func writeCheckpointAdapters(_ w: PythonWriter) {
        w.verbatim("""
        def _numpy_parameters(params):
            return {name: np.asarray(value) for name, value in params.items()}


        def load_vaec_checkpoint(path):
            \"\"\"A vaec checkpoint as the parameter pytree: {name: float32 array}.\"\"\"
            tensors, _ = read_vaec_checkpoint(path)
            return {name: jnp.asarray(tensors[name]) for name in PARAMETERS}
        """)
    }

    func writeTraining(_ w: PythonWriter, plan: ExportPlan) {
        w.verbatim("""
        def adam_init(params):
            \"\"\"Adam's state: the step count and both moments, zero.\"\"\"
            zeros = {name: jnp.zeros_like(value) for name, value in params.items()}
            return {"step": 0, "m": zeros, "v": dict(zeros)}


        @jax.jit
        def _train_step(params, m, v, x, eps, hypers, step_size, root_correction):
            (loss, metrics), grads = jax.value_and_grad(loss_terms, has_aux=True)(params, x, eps, hypers)
            o = TRAIN["optimizer"]
            b1, b2 = o["beta1"], o["beta2"]
            m = {n: b1 * m[n] + (1 - b1) * grads[n] for n in params}
            v = {n: b2 * v[n] + (1 - b2) * grads[n] * grads[n] for n in params}
            params = {n: params[n] - step_size * m[n] / (jnp.sqrt(v[n]) / root_correction + o["eps"]) for n in params}
            return params, m, v, dict(metrics, loss=loss)


        def train_step(params, opt_state, x, eps, hypers):
            \"\"\"One step: forward, backward and Adam with PyTorch's arithmetic (as vaec's Adam):
            p ← p − (lr/(1−β1ᵗ))·m / (√v/√(1−β2ᵗ) + ε). Returns (params, opt_state, terms).\"\"\"
            o = TRAIN["optimizer"]
            step = opt_state["step"] + 1
            step_size = f32(o["lr"] / (1 - o["beta1"] ** step))
            root_correction = f32(math.sqrt(1 - o["beta2"] ** step))
            hypers = {name: f32(value) for name, value in hypers.items()}
            params, m, v, terms = _train_step(params, opt_state["m"], opt_state["v"], x, eps, hypers, step_size, root_correction)
            return params, {"step": step, "m": m, "v": v}, terms


        _metrics = jax.jit(lambda params, x, eps: loss_terms(params, x, eps)[1])
        """)
        w.blank(2)
        PythonTraining.write(w, TrainingSpelling(
            state: "params", array: "jnp.asarray", evaluateDecorator: nil, metrics: "_metrics(params, x, eps)",
            setup: ["params = {name: jnp.asarray(value) for name, value in initial.items()}",
                    "opt_state = adam_init(params)"],
            step: "params, opt_state, terms = train_step(params, opt_state, x, eps, hypers)"))
    }
}
