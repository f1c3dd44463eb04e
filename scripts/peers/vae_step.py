"""Times one training step of the pytorch/examples MLP VAE (784-H-20-H-784, ReLU, Bernoulli on logits,
summed reconstruction, analytic KL, Adam 1e-3) in PyTorch (eager) or JAX (jit), per step with the
result synchronised, so the figure is comparable with `vaec bench` (median of the timed steps). Like
vaec bench's, a timed step includes preparing its batch: gathering the rows of a shuffled epoch and
drawing the noise (NumPy; the first step of an epoch also draws the permutation).

    python vae_step.py torch|jax      env: BATCH (128), HIDDEN (400), STEPS (200), WARMUP (20),
                                      THREADS (PyTorch intra-op threads, 2), DATA (IDX images file)

Prints one line: `<framework> batch B hidden H: median X ms/step, mean Y ms/step`.
The shared anchors (../shared/anchors) time whole trainings; this script exists for the scaling table
(other batch sizes and hidden widths) and is not part of the Swift build."""
import os, sys, time, struct
import numpy as np

BATCH = int(os.environ.get("BATCH", 128)); HIDDEN = int(os.environ.get("HIDDEN", 400))
STEPS = int(os.environ.get("STEPS", 200)); WARMUP = int(os.environ.get("WARMUP", 20))
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("DATA", os.path.join(HERE, "..", "..", "samples", "data", "mnist5k-train-images-idx3-ubyte"))

def load_images(path):
    with open(path, "rb") as f:
        ndim = struct.unpack(">I", f.read(4))[0] & 0xFF
        dims = struct.unpack(">" + "I" * ndim, f.read(4 * ndim))
        return np.frombuffer(f.read(), dtype=np.uint8).reshape(dims[0], -1).astype(np.float32) / 255.0

def batches(x, rng):
    while True:
        perm = rng.permutation(len(x))
        for i in range(0, len(x) - BATCH + 1, BATCH):
            yield x[perm[i:i + BATCH]], rng.standard_normal((BATCH, 20), dtype=np.float32)

def report(name, times):
    t = np.array(times) * 1000
    print(f"{name} batch {BATCH} hidden {HIDDEN}: median {np.median(t):.3f} ms/step, mean {t.mean():.3f} ms/step")

def run_torch(x, rng):
    import torch, torch.nn as nn, torch.nn.functional as F
    torch.manual_seed(0); torch.set_num_threads(int(os.environ.get("THREADS", 2)))
    class VAE(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(784, HIDDEN); self.fc21 = nn.Linear(HIDDEN, 20); self.fc22 = nn.Linear(HIDDEN, 20)
            self.fc3 = nn.Linear(20, HIDDEN); self.fc4 = nn.Linear(HIDDEN, 784)
        def forward(self, x, eps):
            h = F.relu(self.fc1(x)); mu, logvar = self.fc21(h), self.fc22(h)
            z = mu + eps * torch.exp(0.5 * logvar)
            return self.fc4(F.relu(self.fc3(z))), mu, logvar
    model = VAE(); opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    def step(xb, eb):
        opt.zero_grad(set_to_none=True)
        logits, mu, logvar = model(xb, eb)
        loss = F.binary_cross_entropy_with_logits(logits, xb, reduction="sum") - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        loss.backward(); opt.step()
    times = []
    source = batches(x, rng)
    for n in range(WARMUP + STEPS):
        t0 = time.perf_counter()
        xb, eb = next(source)
        step(torch.from_numpy(xb), torch.from_numpy(eb)); t1 = time.perf_counter()
        if n >= WARMUP: times.append(t1 - t0)
    report(f"torch {torch.__version__} eager threads={torch.get_num_threads()}", times)

def run_jax(x, rng):
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=true")
    import jax, jax.numpy as jnp
    sizes = ((784, HIDDEN), (HIDDEN, 20), (HIDDEN, 20), (20, HIDDEN), (HIDDEN, 784))
    key = jax.random.PRNGKey(0); ps = []
    for (i, o) in sizes:
        key, k1, k2 = jax.random.split(key, 3); b = 1 / np.sqrt(i)
        ps.append((jax.random.uniform(k1, (i, o), minval=-b, maxval=b), jax.random.uniform(k2, (o,), minval=-b, maxval=b)))
    def loss_fn(ps, x, eps):
        (w1, b1), (w21, b21), (w22, b22), (w3, b3), (w4, b4) = ps
        h = jax.nn.relu(x @ w1 + b1); mu, logvar = h @ w21 + b21, h @ w22 + b22
        z = mu + eps * jnp.exp(0.5 * logvar)
        logits = jax.nn.relu(z @ w3 + b3) @ w4 + b4
        bce = jnp.sum(jnp.maximum(logits, 0) - logits * x + jnp.log1p(jnp.exp(-jnp.abs(logits))))
        return bce - 0.5 * jnp.sum(1 + logvar - mu ** 2 - jnp.exp(logvar))
    @jax.jit
    def step(ps, m, v, t, x, eps):
        g = jax.grad(loss_fn)(ps, x, eps)
        m = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, m, g)
        v = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, v, g)
        ps = jax.tree.map(lambda p, a, b: p - 1e-3 * (a / (1 - 0.9 ** t)) / (jnp.sqrt(b / (1 - 0.999 ** t)) + 1e-8), ps, m, v)
        return ps, m, v
    m = jax.tree.map(jnp.zeros_like, ps); v = jax.tree.map(jnp.zeros_like, ps)
    times = []
    source = batches(x, rng)
    for n in range(WARMUP + STEPS):
        t0 = time.perf_counter()
        xb, eb = next(source)
        ps, m, v = step(ps, m, v, float(n + 1), jnp.asarray(xb), jnp.asarray(eb)); jax.block_until_ready(ps)
        t1 = time.perf_counter()
        if n >= WARMUP: times.append(t1 - t0)
    report(f"jax {jax.__version__} jit", times)

if __name__ == "__main__":
    x = load_images(DATA); rng = np.random.default_rng(0)
    {"torch": run_torch, "jax": run_jax}[sys.argv[1]](x, rng)
