/// `evaluate`, `train` and the command line: vaec's training loop, the same for both targets but for
/// how they hold the parameters, make arrays and take a step (`TrainingSpelling`).
struct TrainingSpelling {
    /// What holds the parameters: `model` (an nn.Module) or `params` (a pytree).
    var state: String
    /// A numpy array as the framework's array: `torch.from_numpy`, `jnp.asarray`.
    var array: String
    /// A decorator for `evaluate` (PyTorch's no_grad), if any.
    var evaluateDecorator: String?
    /// The metrics of a batch `x`, `eps` without a gradient: a dict with "reconstruction" and "kl".
    var metrics: String
    /// Lines that make the state and the optimizer from vaec's initial parameters (`initial`, numpy by name).
    var setup: [String]
    /// The line of one training step, binding `terms`.
    var step: String
}

enum PythonTraining {
    static func write(_ w: PythonWriter, _ s: TrainingSpelling) {
        if let decorator = s.evaluateDecorator { w.line(decorator) }
        w.verbatim("""
        def evaluate(\(s.state), data, seed, chunk=500):
            \"\"\"Mean reconstruction and KL per example over a data set (float32 [N, *INPUT_SHAPE]) with one posterior
            sample per example, as vaec's Trainer.evaluate: chunks of 500, ε from vaec's stream for `seed`.\"\"\"
            random = VaecRandom(int(seed) ^ 0x5EEDE7A1)
            reconstruction = kl = 0.0
            for first in range(0, len(data), chunk):
                x = \(s.array)(np.ascontiguousarray(data[first:first + chunk]))
                eps = \(s.array)(random.normal(len(x) * LATENTS).reshape((len(x),) + LATENT_SHAPE))
                metrics = \(s.metrics)
                reconstruction += float(metrics["reconstruction"])
                kl += float(metrics["kl"])
            return reconstruction / len(data), kl / len(data)


        def train(epochs=None, out_dir=None, seed=None, log=print):
            \"\"\"Trains with the model file's recipe as `vaec run` does, from vaec's random stream for the seed (the
            same initial parameters, shuffles and ε, so the same run up to float32 rounding): a new shuffle each
            epoch, the last partial batch dropped, one posterior sample per example, Adam; one line per epoch
            with the train and test −ELBO in nats per example; writes out_dir/checkpoint.safetensors.\"\"\"
            seed = TRAIN["seed"] if seed is None else seed
            epochs = TRAIN["epochs"] if epochs is None else epochs
            random = VaecRandom(seed)   # vaec's stream: its initial parameters, shuffles and ε
            initial = vaec_initial_parameters(random)
        \(s.setup.map { "    " + $0 }.joined(separator: "\n"))
            controller = BetaController()
            source_x = load_data("data")
            train_x = binarized(source_x, seed, 0)
            test_x = binarized(load_data("test"), seed, -1) if TRAIN["test"] else None
            batch = TRAIN["batch"]
            steps_per_epoch = len(train_x) // batch
            total = steps_per_epoch * epochs
            step = 0
            for epoch in range(1, epochs + 1):
                start = time.time()
                if TRAIN["binarize"] == "dynamic" and epoch > 1:
                    train_x = binarized(source_x, seed, epoch - 1)   # a fresh draw each epoch
                order = random.permutation(len(train_x))
                reconstruction = kl = 0.0
                for i in range(steps_per_epoch):
                    x = \(s.array)(train_x[order[i * batch:(i + 1) * batch]])
                    eps = \(s.array)(random.normal(batch * LATENTS).reshape((batch,) + LATENT_SHAPE))
                    hypers = controller.hypers(step, steps_per_epoch, total)
                    \(s.step)
                    r, k = float(terms["reconstruction"]), float(terms["kl"])
                    controller.observe(r / batch, k / batch)
                    reconstruction += r
                    kl += k
                    step += 1
                n = steps_per_epoch * batch
                line = f"epoch {epoch:3d}  train -ELBO {(reconstruction + kl) / n:9.3f} (recon {reconstruction / n:8.3f}, KL {kl / n:7.3f})"
                if test_x is not None:
                    test_r, test_k = evaluate(\(s.state), test_x, seed + epoch)
                    line += f"  test -ELBO {test_r + test_k:9.3f}"
                beta = hypers.get("beta", 1.0) / hypers.get("recon_weight", 1.0)
                log(line + f"  β {beta:.4g}  {time.time() - start:.1f} s")
            if out_dir:
                os.makedirs(out_dir, exist_ok=True)
                save_vaec_checkpoint(os.path.join(out_dir, "checkpoint.safetensors"), \(s.state), step=step, epoch=epochs)
            return \(s.state)


        if __name__ == "__main__":
            parser = argparse.ArgumentParser(description=f"Train {MODEL_NAME} with the recipe of {MODEL_FILE}.")
            parser.add_argument("--epochs", type=int, default=None)
            parser.add_argument("--seed", type=int, default=None)
            parser.add_argument("--out", default=None, help="where to write checkpoint.safetensors")
            arguments = parser.parse_args()
            train(arguments.epochs, arguments.out, arguments.seed)
        """)
    }
}
