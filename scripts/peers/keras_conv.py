"""The convolutional VAE of keras.io (examples/generative/vae) with vaec's semantics, in PyTorch (eager) and JAX
(the whole step under jax.jit): the peers of `samples/keras_conv.vae` (vaec issue #9: test −ELBO within 2 % of
PyTorch's after 10 epochs of the same recipe, and a faster step).

    python keras_conv.py train torch|jax [--seed S] [--epochs E]   train, then the test −ELBO (one line)
    python keras_conv.py step  torch|jax [--steps N] [--warmup W]  median ms of N timed steps (one line)
    python keras_conv.py check                                     the two backends on identical weights, the
                                                                   padding against naive loops, and
                                                                   conv_transpose2d as conv2d's adjoint
    env: THREADS (PyTorch intra-op threads, 2), BATCH (128), DATA (directory of the mnist5k IDX files)

Model (vaec's semantics, input [1, 28, 28], NCHW; weights in PyTorch's layouts and with PyTorch's default init):
    encoder  conv2d 32 3×3 s2 "same", ReLU (28→14); conv2d 64 3×3 s2 "same", ReLU (14→7); flatten C,H,W (3136);
             dense 16, ReLU; mean = dense 2, logvar = dense 2;  z = mean + exp(logvar / 2)·ε, prior N(0, I)
    decoder  dense 7·7·64, ReLU, reshape [64, 7, 7]; conv_transpose2d 64 3×3 s2 "same", ReLU (7→14);
             conv_transpose2d 32 3×3 s2 "same", ReLU (14→28); conv_transpose2d 1 3×3 s1 "same" → logits
    loss     per image: Bernoulli BCE on the logits summed over the 784 grey pixels + analytic KL summed over
             the 2 latent dimensions; the gradient is that of the batch mean.
    recipe   Adam(1e-3), batch 128, 10 epochs, reshuffled each epoch, the last partial batch dropped (31 steps
             per epoch on the 4000 training images); the test −ELBO is the mean over the 1000 test images with
             one draw of ε.
"same" is TensorFlow's: conv2d's output is ceil(H/s) and the input is padded by pad_total = max((out−1)·s + k − H,
0), pad_total // 2 before and the rest after (28→14 pads 0 before, 1 after). vaec's conv_transpose2d is the exact
adjoint of the "same" conv2d that maps the big size H·s to H: the full transposed convolution ((H−1)·s + k),
cropped from that conv's pad_before = max(k − s, 0) // 2 to H·s.

Both backends draw everything from one numpy Generator seeded with --seed, in one order (initial weights,
then per epoch the permutation and each batch's ε), so for a seed PyTorch and JAX start from the same weights
and see the same batches and noise; they differ only by floating-point rounding.

FLOPs of one training step (batch 128; multiply-adds × 2, counting only the products that reach an output,
so the transposed convolutions count as the convolutions they are adjoint to; `training_step_flops`):
    forward per image, in MACs: conv1 56 448, conv2 903 168, dense 3136→16 50 176, mean/logvar 64,
    dense 2→3136 6 272, deconv1 1 806 336, deconv2 3 612 672, deconv3 225 792 — 6.66 M MACs;
    backward: each layer's weight gradient plus its input gradient (the same MACs twice), except the first
    layer's input gradient, which is not needed: 13.27 M MACs.
    One step ≈ 19.93 M MACs per image ≈ 39.9 MFLOP per image ≈ 5.10 GFLOP at batch 128 (elementwise work,
    the loss and Adam over the 134 165 parameters add well under 1 %).
"""
import argparse, os, struct, sys, time
from collections import namedtuple
from functools import partial
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("DATA", os.path.join(HERE, "..", "..", "samples", "data"))
THREADS = int(os.environ.get("THREADS", 2))
BATCH = int(os.environ.get("BATCH", 128))
LATENT = 2
DECODER_GRID = (64, 7, 7)

# The layers in order. conv: weight [out, in, k, k]; conv_t: weight [in, out, k, k] (PyTorch's layouts);
# dense: weight [out, in]. `size` is the spatial size of the layer's input.
Layer = namedtuple("Layer", "kind cin cout k stride size")
LAYERS = {
    "enc.conv1": Layer("conv", 1, 32, 3, 2, 28),
    "enc.conv2": Layer("conv", 32, 64, 3, 2, 14),
    "enc.dense": Layer("dense", 3136, 16, 1, 1, 1),
    "enc.mean": Layer("dense", 16, LATENT, 1, 1, 1),
    "enc.logvar": Layer("dense", 16, LATENT, 1, 1, 1),
    "dec.dense": Layer("dense", LATENT, 7 * 7 * 64, 1, 1, 1),
    "dec.deconv1": Layer("conv_t", 64, 64, 3, 2, 7),
    "dec.deconv2": Layer("conv_t", 64, 32, 3, 2, 14),
    "dec.deconv3": Layer("conv_t", 32, 1, 3, 1, 28),
}


# ---- semantics shared by both backends ----

def same_padding(size, k, s):
    """TensorFlow's "same" for conv2d: (pad_before, pad_after) so that the output is ceil(size / s)."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def transpose_crop_start(k, s):
    """Where vaec's "same" conv_transpose2d starts inside the full (H−1)·s + k output: the pad_before of the
    "same" conv2d from H·s to H, whose pad_total is max(k − s, 0)."""
    return max(k - s, 0) // 2


def weight_shape(layer):
    return {"conv": (layer.cout, layer.cin, layer.k, layer.k),
            "conv_t": (layer.cin, layer.cout, layer.k, layer.k),
            "dense": (layer.cout, layer.cin)}[layer.kind]


def torch_fan_in(layer):
    # PyTorch's default init (kaiming_uniform with a = √5, and the bias) draws U(±1/√fan_in) with fan_in =
    # weight.size(1) · k·k, which for ConvTranspose2d's [in, out, k, k] weight is the *output* channels.
    shape = weight_shape(layer)
    return int(np.prod(shape[1:]))


def init_params(rng, dtype=np.float32):
    params = {}
    for name, layer in LAYERS.items():
        bound = 1 / np.sqrt(torch_fan_in(layer))
        params[name + ".weight"] = rng.uniform(-bound, bound, weight_shape(layer)).astype(dtype)
        params[name + ".bias"] = rng.uniform(-bound, bound, (layer.cout,)).astype(dtype)
    return params


def per_image_loss(ops, p, x, eps):
    """(BCE, KL) per image, written once for both backends; `ops` supplies the layers' primitives."""
    def apply(name, h):
        layer, w, b = LAYERS[name], p[name + ".weight"], p[name + ".bias"]
        if layer.kind == "conv":
            return ops.conv2d_same(h, w, b, layer.stride)
        if layer.kind == "conv_t":
            return ops.conv_transpose2d_same(h, w, b, layer.stride)
        return ops.linear(h, w, b)
    n = x.shape[0]
    h = ops.relu(apply("enc.conv1", x))
    h = ops.relu(apply("enc.conv2", h))
    h = ops.relu(apply("enc.dense", h.reshape(n, -1)))  # flatten in C, H, W order
    mean, logvar = apply("enc.mean", h), apply("enc.logvar", h)
    z = mean + ops.exp(0.5 * logvar) * eps
    h = ops.relu(apply("dec.dense", z)).reshape((n,) + DECODER_GRID)
    h = ops.relu(apply("dec.deconv1", h))
    h = ops.relu(apply("dec.deconv2", h))
    logits = apply("dec.deconv3", h).reshape(n, -1)
    bce = ops.bce_with_logits(logits, x.reshape(n, -1)).sum(1)
    kl = -0.5 * (1 + logvar - mean * mean - ops.exp(logvar)).sum(1)
    return bce, kl


def training_step_flops(batch):
    """Multiply-adds of forward + backward × 2 (see the module's docstring)."""
    forward, first_input_grad = 0, None
    for layer in LAYERS.values():
        if layer.kind == "conv":
            out = -(-layer.size // layer.stride)
            macs = out * out * layer.cout * layer.cin * layer.k * layer.k
        elif layer.kind == "conv_t":  # each input pixel scatters into k·k outputs of every output channel
            macs = layer.size * layer.size * layer.cin * layer.cout * layer.k * layer.k
        else:
            macs = layer.cin * layer.cout
        forward += macs
        first_input_grad = macs if first_input_grad is None else first_input_grad
    return 2 * batch * (3 * forward - first_input_grad)


# ---- data, batches, output ----

def load_images(split):
    with open(os.path.join(DATA, f"mnist5k-{split}-images-idx3-ubyte"), "rb") as f:
        ndim = struct.unpack(">I", f.read(4))[0] & 0xFF
        dims = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims[0], 1, 28, 28).astype(np.float32) / 255.0


def batches(x, rng, batch, epochs=None):
    """Reshuffled each epoch, the last partial batch dropped; each batch's ε drawn after its images."""
    epoch = 0
    while epochs is None or epoch < epochs:
        perm = rng.permutation(len(x))
        for i in range(0, len(x) - batch + 1, batch):
            yield x[perm[i:i + batch]], rng.standard_normal((batch, LATENT), dtype=np.float32)
        epoch += 1


# ---- backends: primitives, then a trainer with step(x, eps) and evaluate(x, eps) -> (bce, kl) per image ----

class TorchOps:
    def __init__(self):
        import torch, torch.nn.functional as F
        self.torch, self.F = torch, F
        self.relu, self.exp, self.linear = torch.relu, torch.exp, F.linear

    def conv2d_same(self, x, w, b, s):
        k = w.shape[-1]
        (top, bottom), (left, right) = same_padding(x.shape[2], k, s), same_padding(x.shape[3], k, s)
        return self.F.conv2d(self.F.pad(x, (left, right, top, bottom)), w, b, stride=s)

    def conv_transpose2d_same(self, x, w, b, s):
        k = w.shape[-1]
        # With k < s the wanted window would run past the full output (zeros, and no bias there); this
        # model never asks for it.
        assert k >= s, "conv_transpose2d with kernel smaller than stride is not implemented here"
        start = transpose_crop_start(k, s)
        y = self.F.conv_transpose2d(x, w, b, stride=s)
        return y[:, :, start:start + x.shape[2] * s, start:start + x.shape[3] * s]

    def bce_with_logits(self, logits, x):
        return self.F.binary_cross_entropy_with_logits(logits, x, reduction="none")


class JaxOps:
    def __init__(self):
        import jax, jax.numpy as jnp
        self.lax, self.jnp = jax.lax, jnp
        self.relu, self.exp = jax.nn.relu, jnp.exp
        self.transposed = self._transposed_convolution(jax)

    def linear(self, x, w, b):
        return x @ w.T + b

    def _conv(self, x, w, s):
        k = w.shape[-1]
        pads = [same_padding(x.shape[2], k, s), same_padding(x.shape[3], k, s)]
        return self.lax.conv_general_dilated(x, w, (s, s), pads, dimension_numbers=("NCHW", "OIHW", "NCHW"))

    def conv2d_same(self, x, w, b, s):
        return self._conv(x, w, s) + b[None, :, None, None]

    def _transposed_convolution(self, jax):
        """conv_transpose2d without bias: the value as a stride-1 convolution of the input dilated by s with the
        kernel flipped and its channel axes swapped (padding the dilated input by k−1 on each side would give the
        full (H−1)·s + k output; the crop to [start, start + H·s) is folded into the padding).
        Its gradients by the adjoint identity <conv_t(x, w), g> = <x, conv(g, w)>: the input's is conv(g, w),
        the weight's is conv's weight gradient at input g and cotangent x. Both are then strided convolutions;
        XLA's own rule instead differentiates the dilated convolution, and on CPU that weight gradient (a
        convolution with a dilated kernel) is tens of times slower: 357 and 825 ms for deconv1 and deconv2 at
        batch 128 (2 busy cores), which made the step 1.6 s, against 40-50 ms for the strided form."""
        lax, jnp = self.lax, self.jnp

        @partial(jax.custom_vjp, nondiff_argnums=(2,))
        def conv_t(x, w, s):
            k = w.shape[-1]
            start = transpose_crop_start(k, s)
            pad = (k - 1 - start, s - 1 + start)
            kernel = jnp.flip(w, (2, 3)).transpose(1, 0, 2, 3)  # [in, out, k, k] -> OIHW, flipped
            return lax.conv_general_dilated(x, kernel, (1, 1), [pad, pad], lhs_dilation=(s, s),
                                            dimension_numbers=("NCHW", "OIHW", "NCHW"))

        def forward(x, w, s):
            return conv_t(x, w, s), (x, w)

        def backward(s, residuals, g):
            x, w = residuals
            gx, weight_vjp = jax.vjp(lambda w: self._conv(g, w, s), w)
            return gx, weight_vjp(x)[0]

        conv_t.defvjp(forward, backward)
        return conv_t

    def conv_transpose2d_same(self, x, w, b, s):
        return self.transposed(x, w, s) + b[None, :, None, None]

    def bce_with_logits(self, logits, x):
        jnp = self.jnp
        return jnp.maximum(logits, 0) - logits * x + jnp.log1p(jnp.exp(-jnp.abs(logits)))


class TorchTrainer:
    def __init__(self, params):
        import torch
        torch.set_num_threads(THREADS)
        self.torch, self.ops = torch, TorchOps()
        self.params = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
        self.opt = torch.optim.Adam(self.params.values(), lr=1e-3)
        self.name = f"torch {torch.__version__} eager threads={torch.get_num_threads()}"
        self.compile_ms = 0.0

    def step(self, x, eps):
        self.opt.zero_grad(set_to_none=True)
        bce, kl = per_image_loss(self.ops, self.params, self.torch.from_numpy(x), self.torch.from_numpy(eps))
        (bce + kl).mean().backward()
        self.opt.step()

    def sync(self):
        pass

    def evaluate(self, x, eps):
        with self.torch.no_grad():
            bce, kl = per_image_loss(self.ops, self.params, self.torch.from_numpy(x), self.torch.from_numpy(eps))
        return bce.numpy(), kl.numpy()


class JaxTrainer:
    def __init__(self, params):
        os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true")
        import jax, jax.numpy as jnp
        self.jax, self.jnp, self.ops = jax, jnp, JaxOps()
        self.name = f"jax {jax.__version__} jit"
        ops = self.ops

        def mean_loss(p, x, eps):
            bce, kl = per_image_loss(ops, p, x, eps)
            return jnp.mean(bce + kl)

        def step(p, m, v, t, x, eps):  # Adam as torch.optim.Adam's defaults
            g = jax.grad(mean_loss)(p, x, eps)
            m = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, m, g)
            v = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, v, g)
            p = jax.tree.map(lambda p, m, v: p - 1e-3 * (m / (1 - 0.9 ** t)) / (jnp.sqrt(v / (1 - 0.999 ** t)) + 1e-8),
                             p, m, v)
            return p, m, v

        self.p = {k: jnp.asarray(v) for k, v in params.items()}
        self.m = jax.tree.map(jnp.zeros_like, self.p)
        self.v = jax.tree.map(jnp.zeros_like, self.p)
        self.t = 0
        # Compiled ahead of time, so that no step's time includes the compile and no extra step is taken.
        x0 = jnp.zeros((BATCH, 1, 28, 28), jnp.float32); e0 = jnp.zeros((BATCH, LATENT), jnp.float32)
        start = time.perf_counter()
        self.compiled = jax.jit(step).lower(self.p, self.m, self.v, np.float32(1), x0, e0).compile()
        self.compile_ms = (time.perf_counter() - start) * 1e3
        self.eval_fn = jax.jit(lambda p, x, eps: per_image_loss(ops, p, x, eps))

    def step(self, x, eps):
        self.t += 1
        self.p, self.m, self.v = self.compiled(self.p, self.m, self.v, np.float32(self.t),
                                               self.jnp.asarray(x), self.jnp.asarray(eps))

    def sync(self):
        self.jax.block_until_ready(self.p)

    def evaluate(self, x, eps):
        bce, kl = self.eval_fn(self.p, self.jnp.asarray(x), self.jnp.asarray(eps))
        return np.asarray(bce), np.asarray(kl)


TRAINERS = {"torch": TorchTrainer, "jax": JaxTrainer}


# ---- modes ----

def train(backend, seed, epochs):
    xtr, xte = load_images("train"), load_images("test")
    rng = np.random.default_rng(seed)
    trainer = TRAINERS[backend](init_params(rng))
    steps, start = 0, time.perf_counter()
    for x, eps in batches(xtr, rng, BATCH, epochs):
        trainer.step(x, eps); steps += 1
    trainer.sync()
    seconds = time.perf_counter() - start
    bce, kl = trainer.evaluate(xte, rng.standard_normal((len(xte), LATENT), dtype=np.float32))
    print(f"{trainer.name} seed {seed}: compile {trainer.compile_ms:.0f} ms, {seconds / steps * 1e3:.3f} ms/step over "
          f"{steps} steps ({seconds:.1f} s), test -ELBO {np.mean(bce + kl):.2f} nats/image "
          f"(bce {np.mean(bce):.2f}, kl {np.mean(kl):.2f})")


def step_times(backend, steps, warmup):
    """Times what `vaec bench` times: gather a batch, draw its ε, the training step (synchronised)."""
    xtr = load_images("train")
    rng = np.random.default_rng(0)
    trainer = TRAINERS[backend](init_params(rng))
    stream, times = batches(xtr, rng, BATCH), []
    for n in range(warmup + steps):
        start = time.perf_counter()
        x, eps = next(stream)
        trainer.step(x, eps); trainer.sync()
        if n >= warmup:
            times.append(time.perf_counter() - start)
    ms = np.array(times) * 1e3
    flops = training_step_flops(BATCH)
    print(f"{trainer.name} batch {BATCH}: median {np.median(ms):.3f} ms/step, mean {ms.mean():.3f} ms/step, "
          f"{flops / 1e9:.3f} GFLOP/step, {flops / np.median(ms) / 1e6:.1f} GFLOP/s")


def naive_conv2d_same(x, w, s):
    """Direct loops over TensorFlow's "same" definition, as an independent reference for the padding."""
    n, cin, h, wd = x.shape
    cout, _, k, _ = w.shape
    (top, _), (left, _) = same_padding(h, k, s), same_padding(wd, k, s)
    oh, ow = -(-h // s), -(-wd // s)
    y = np.zeros((n, cout, oh, ow))
    for i in range(oh):
        for j in range(ow):
            for di in range(k):
                for dj in range(k):
                    r, c = i * s + di - top, j * s + dj - left
                    if 0 <= r < h and 0 <= c < wd:
                        y[:, :, i, j] += x[:, :, r, c] @ w[:, :, di, dj].T
    return y


def check():
    """The backends on identical weights, batch and ε (float64: identical formulas; float32: rounding), the
    "same" padding against loops, conv_transpose2d as the adjoint of conv2d, and the init against PyTorch's."""
    import torch, torch.nn as nn
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    torch.set_num_threads(THREADS)
    tops, jops = TorchOps(), JaxOps()
    rng = np.random.default_rng(1)
    ok = True

    def report(what, diff, scale, tolerance):
        nonlocal ok
        good = diff <= tolerance * max(scale, 1e-30)
        ok &= good
        print(f"  {what:<24} max |Δ| {diff:.3e}   relative {diff / max(scale, 1e-30):.2e}   {'ok' if good else 'FAIL'}")

    x = load_images("train")[:16]
    eps = rng.standard_normal((16, LATENT))
    params = init_params(rng, np.float64)
    for dtype, tolerance in ((np.float64, 1e-12), (np.float32, 1e-4)):
        print(f"torch vs JAX, {np.dtype(dtype).name}, batch 16, loss = batch mean of BCE + KL:")
        tp = {k: torch.tensor(v.astype(dtype), requires_grad=True) for k, v in params.items()}
        bce, kl = per_image_loss(tops, tp, torch.tensor(x.astype(dtype)), torch.tensor(eps.astype(dtype)))
        tloss = (bce + kl).mean(); tloss.backward()

        def jloss(p):
            bce, kl = per_image_loss(jops, p, jnp.asarray(x.astype(dtype)), jnp.asarray(eps.astype(dtype)))
            return jnp.mean(bce + kl)
        jp = {k: jnp.asarray(v.astype(dtype)) for k, v in params.items()}
        jl, jg = jax.jit(jax.value_and_grad(jloss))(jp)
        assert jl.dtype == dtype
        report("loss", abs(float(jl) - tloss.item()), abs(tloss.item()), tolerance)
        for k in params:
            tg, g = tp[k].grad.numpy(), np.asarray(jg[k])
            report("grad " + k, np.abs(tg - g).max(), np.abs(tg).max(), tolerance)

    print("\"same\" conv2d (float64) against direct loops, and conv_transpose2d as its adjoint "
          "(<conv(a), b> = <a, conv_t(b)>):")
    for size, k, s, cbig, csmall in ((28, 3, 2, 1, 32), (14, 3, 2, 32, 64), (28, 3, 1, 32, 1), (5, 3, 2, 2, 3),
                                     (6, 3, 2, 2, 3), (8, 4, 2, 2, 3)):
        small = -(-size // s)
        a = rng.standard_normal((2, cbig, size, size))
        b = rng.standard_normal((2, csmall, small, small))
        w = rng.standard_normal((csmall, cbig, k, k))  # conv2d [out, in]; the same tensor is conv_t's [in, out]
        reference = naive_conv2d_same(a, w, s)
        for ops, to, back in ((tops, torch.tensor, lambda t: t.numpy()), (jops, jnp.asarray, np.asarray)):
            name = "torch" if ops is tops else "jax"
            zero = to(np.zeros(csmall)), to(np.zeros(cbig))
            conv = back(ops.conv2d_same(to(a), to(w), zero[0], s))
            report(f"{name} conv {size}→{small} k{k} s{s}", np.abs(conv - reference).max(), np.abs(reference).max(), 1e-12)
            if size == small * s:  # the transpose maps H to H·s: defined when the big side is a multiple of s
                conv_t = back(ops.conv_transpose2d_same(to(b), to(w), zero[1], s))
                assert conv_t.shape == a.shape, (conv_t.shape, a.shape)
                lhs, rhs = np.sum(conv * b), np.sum(a * conv_t)
                report(f"{name} adjoint {small}→{size} k{k} s{s}", abs(lhs - rhs), abs(lhs), 1e-12)

    print("init bounds 1/√fan_in against PyTorch's own fan-in of the same module:")
    for name, layer in LAYERS.items():
        module = {"conv": lambda: nn.Conv2d(layer.cin, layer.cout, layer.k, layer.stride),
                  "conv_t": lambda: nn.ConvTranspose2d(layer.cin, layer.cout, layer.k, layer.stride),
                  "dense": lambda: nn.Linear(layer.cin, layer.cout)}[layer.kind]()
        fan_in, _ = nn.init._calculate_fan_in_and_fan_out(module.weight)
        good = fan_in == torch_fan_in(layer) and tuple(module.weight.shape) == weight_shape(layer)
        ok &= good
        print(f"  {name:<12} weight {str(weight_shape(layer)):<18} fan_in {torch_fan_in(layer):>5} (torch {fan_in})"
              f"   {'ok' if good else 'FAIL'}")
    print(f"{sum(v.size for v in params.values())} parameters; "
          f"training step: {training_step_flops(BATCH) / 1e9:.3f} GFLOP at batch {BATCH}")
    print("all checks passed" if ok else "SOME CHECKS FAILED")
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["train", "step", "check"])
    parser.add_argument("backend", nargs="?", choices=sorted(TRAINERS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()
    if args.mode == "check":
        sys.exit(0 if check() else 1)
    if args.backend is None:
        parser.error(f"{args.mode} needs a backend: torch or jax")
    if args.mode == "train":
        train(args.backend, args.seed, args.epochs)
    else:
        step_times(args.backend, args.steps, args.warmup)


if __name__ == "__main__":
    main()
