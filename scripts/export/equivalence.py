#!/usr/bin/env python3
"""Checks that a model exported by `vaec export` computes vaec's loss and gradients.

On the same parameters, batch and noise ε, the exported module's loss must equal vaec's within a relative
1e-5, and each parameter's gradient within ‖g_vaec − g_python‖ / ‖g_python‖ ≤ 1e-5 (both sides compute in
float32; the criterion is per tensor so that summation order, which differs between vaec's kernels and
PyTorch's or XLA's, cannot fail a single tiny entry). Each case is checked twice: with ε = 0 (z = μ) and
with a fixed nonzero ε, so the reparameterised sample and the sampled KL are covered too.

Whole pipeline, with the vaec binary (what a user runs):

    python scripts/export/equivalence.py --vaec .build/release/vaec samples/*.vae

  For each model and target it runs `vaec export`, imports the module, draws parameters with the module's
  init and writes them with save_vaec_checkpoint (at step --step, so scheduled β's are not at their
  start), writes ε to a .npy, runs `vaec grad MODEL --checkpoint C --rows 0:16 --noise zero|EPS.npy --out G`,
  and compares G with the module's loss_and_grads.

Cases prepared elsewhere (the Swift tests, which compute vaec's side with the library):

    python scripts/export/equivalence.py --manifest cases.json --json results.json

  cases.json is a list of {"model", "target", "module", "checkpoint", "rows": [a, b], "noise": "zero" or
  an .npy path, "gradients": vaec's G.safetensors, "resave": a path for the round-trip check}. With
  `--manifest -` the cases come one JSON object per line on stdin and are checked as they arrive.

Exit status 0 when every case passes, 1 otherwise; --json writes every figure.
"""
import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

TOLERANCE = 1e-5


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def vaec_hypers(metadata):
    """The hyper-parameters vaec's gradient file says it used (the batch-size ones left out)."""
    text = metadata.get("hypers", "")
    pairs = [item.split("=", 1) for item in text.split(",") if "=" in item]
    return {name: float(value) for name, value in pairs if name not in ("1/batch", "batch")}


def python_side(module, target, checkpoint, x, eps, hypers):
    """(terms, gradients) of the exported module, as float64 numpy for comparing."""
    if target == "pytorch":
        import torch
        model = module.Model()
        model.load_state_dict(module.load_vaec_checkpoint(checkpoint))
        terms, grads = module.loss_and_grads(model, torch.from_numpy(x), torch.from_numpy(eps), hypers)
        to_numpy = lambda t: t.detach().cpu().numpy()
    else:
        import jax
        import jax.numpy as jnp
        params = module.load_vaec_checkpoint(checkpoint)
        # One compilation per module (op-by-op dispatch compiles each primitive and is slower here).
        if not hasattr(module, "_jitted_loss_and_grads"):
            module._jitted_loss_and_grads = jax.jit(module.loss_and_grads)
        terms, grads = module._jitted_loss_and_grads(params, jnp.asarray(x), jnp.asarray(eps), hypers)
        to_numpy = np.asarray
    return ({k: np.asarray(to_numpy(v), dtype=np.float64) for k, v in terms.items()},
            {k: np.asarray(to_numpy(v), dtype=np.float64) for k, v in grads.items()})


def relative(a, b):
    """‖a − b‖ / ‖b‖ (‖a − b‖ when b is zero)."""
    scale = float(np.linalg.norm(b))
    difference = float(np.linalg.norm(np.asarray(a, dtype=np.float64) - b))
    return difference / scale if scale > 0 else difference


def check_case(case, modules):
    """Compares one case; returns its figures."""
    target = case["target"]
    key = (case["module"], target)
    if key not in modules:
        modules[key] = load_module(case["module"], f"exported_{len(modules)}")
    module = modules[key]
    data = module.load_data("data")
    a, b = case["rows"]
    x = np.ascontiguousarray(data[a:b])
    eps = np.zeros((b - a,) + tuple(module.LATENT_SHAPE), np.float32) if case["noise"] == "zero" \
        else np.load(case["noise"]).astype(np.float32)

    checkpoint_tensors, checkpoint_metadata = module.read_vaec_checkpoint(case["checkpoint"])
    step = int(checkpoint_metadata.get("step", 0))
    # The hypers the exported schedule gives at the checkpoint's step, as vaec's EvaluationPoint derives them.
    steps_per_epoch = max(1, len(data) // module.TRAIN["batch"])
    hypers = module.BetaController().hypers(step, steps_per_epoch, steps_per_epoch * module.TRAIN["epochs"])

    vaec_grads, vaec_metadata = module.read_safetensors(case["gradients"])
    reported = vaec_hypers(vaec_metadata)
    hypers_match = all(abs(float(np.float32(hypers.get(k, 1.0))) - v) <= 1e-7 * max(1.0, abs(v)) for k, v in reported.items())

    terms, grads = python_side(module, target, case["checkpoint"], x, eps, hypers)
    loss_vaec = float(vaec_metadata["loss"])
    loss_python = float(terms["loss"])
    result = {
        "model": case["model"], "target": target, "noise": "zero" if case["noise"] == "zero" else "fixed",
        "step": step, "hypers": hypers, "vaec_hypers": reported, "hypers_match": hypers_match,
        "loss_vaec": loss_vaec, "loss_python": loss_python,
        "loss_relative": abs(loss_vaec - loss_python) / max(abs(loss_python), 1e-30),
        "gradients": {name: relative(vaec_grads[name], grads[name]) for name in module.PARAMETERS},
        "missing": sorted(set(module.PARAMETERS) - set(vaec_grads)),
    }
    for metric in ("reconstruction", "kl"):
        if metric in vaec_metadata:
            # Nats per example, relative above one nat and absolute below: a reconstruction near zero is a
            # sum of ±0.7-nat terms (the continuous Bernoulli at small logits) whose float32 rounding alone
            # is ~1e-6 nats, so a purely relative figure would measure rounding noise, not agreement.
            ours = float(terms[metric]) / (b - a)
            result[f"{metric}_relative"] = abs(float(vaec_metadata[metric]) - ours) / max(abs(ours), 1.0)
    result["max_gradient_relative"] = max(result["gradients"].values())
    if case.get("resave"):
        # save_vaec_checkpoint must write the very bytes vaec wrote for the same values and metadata.
        module.save_vaec_checkpoint(case["resave"], checkpoint_tensors, step=step, epoch=int(checkpoint_metadata.get("epoch", 0)))
        with open(case["resave"], "rb") as f, open(case["checkpoint"], "rb") as g:
            result["resave_identical"] = f.read() == g.read()
    result["passed"] = (hypers_match and not result["missing"] and result["loss_relative"] <= TOLERANCE
                        and result["max_gradient_relative"] <= TOLERANCE
                        and all(result.get(f"{m}_relative", 0) <= TOLERANCE for m in ("reconstruction", "kl")))
    return result


def run(command):
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{completed.stdout}{completed.stderr}")
    return completed.stdout


def prepare_with_vaec(vaec, models, targets, rows, step, work):
    """The cases of the whole pipeline: export, checkpoint, noise and `vaec grad` for each model and target."""
    cases = []
    for model in models:
        name = os.path.splitext(os.path.basename(model))[0]
        a, b = rows
        for target in targets:
            module_path = os.path.join(work, f"{name}_{target}.py")
            run([vaec, "export", model, "--to", target, "-o", module_path])
            module = load_module(module_path, f"prepared_{name}_{target}")
            checkpoint = os.path.join(work, f"{name}_{target}.safetensors")
            if target == "pytorch":
                import torch
                torch.manual_seed(0)
                module.save_vaec_checkpoint(checkpoint, module.Model(), step=step)
            else:
                import jax
                module.save_vaec_checkpoint(checkpoint, module.init_params(jax.random.PRNGKey(0)), step=step)
            noise = os.path.join(work, f"{name}_eps.npy")
            np.save(noise, np.random.default_rng(7).standard_normal((b - a,) + tuple(module.LATENT_SHAPE)).astype(np.float32))
            for kind in ("zero", noise):
                gradients = os.path.join(work, f"{name}_{target}_{'zero' if kind == 'zero' else 'fixed'}_grad.safetensors")
                run([vaec, "grad", model, "--checkpoint", checkpoint, "--rows", f"{a}:{b}", "--noise", kind, "--out", gradients])
                cases.append({"model": name, "target": target, "module": module_path, "checkpoint": checkpoint,
                              "rows": [a, b], "noise": kind, "gradients": gradients})
    return cases


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", help="model files (with --vaec)")
    parser.add_argument("--vaec", help="the vaec binary: run the whole pipeline")
    parser.add_argument("--manifest", help="a JSON list of prepared cases")
    parser.add_argument("--targets", default="pytorch,jax")
    parser.add_argument("--rows", default="0:16")
    parser.add_argument("--step", type=int, default=20, help="the step the checkpoint records (scheduled β)")
    parser.add_argument("--work", help="where to keep the files (default: a temporary folder)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--jax-cache", help="a folder for JAX's persistent compilation cache (later runs skip XLA's compiles)")
    args = parser.parse_args()
    if args.jax_cache:
        import jax
        jax.config.update("jax_compilation_cache_dir", args.jax_cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    if bool(args.manifest) == bool(args.vaec):
        parser.error("give --manifest CASES.json, or --vaec BINARY with model files")

    if args.manifest == "-":
        # One case per line on stdin, checked as it arrives (the caller prepares the next meanwhile).
        cases = (json.loads(line) for line in sys.stdin if line.strip())
    elif args.manifest:
        with open(args.manifest) as f:
            cases = json.load(f)
    else:
        work = args.work or tempfile.mkdtemp(prefix="vaec-equivalence-")
        os.makedirs(work, exist_ok=True)
        a, b = (int(v) for v in args.rows.split(":"))
        cases = prepare_with_vaec(args.vaec, args.models, args.targets.split(","), (a, b), args.step, work)

    modules, results = {}, []
    print(f"{'model':<18} {'target':<8} {'noise':<6} {'loss vaec':>14} {'loss python':>14} {'rel. loss':>10} {'max rel. grad':>14}  result")
    for case in cases:
        try:
            r = check_case(case, modules)
        except Exception as error:  # one broken case must not hide the others
            r = {"model": case["model"], "target": case["target"], "noise": case["noise"], "passed": False,
                 "error": f"{type(error).__name__}: {error}"}
            print(f"{case['model']:<18} {case['target']:<8} {'':<6} error: {r['error']}")
            results.append(r)
            continue
        results.append(r)
        verdict = "ok" if r["passed"] else "FAIL" + ("" if r["hypers_match"] else f" (hypers {r['hypers']} vs vaec {r['vaec_hypers']})")
        print(f"{r['model']:<18} {r['target']:<8} {r['noise']:<6} {r['loss_vaec']:>14.6f} {r['loss_python']:>14.6f} "
              f"{r['loss_relative']:>10.2e} {r['max_gradient_relative']:>14.2e}  {verdict}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    failed = [r for r in results if not r["passed"]]
    print(f"{len(results) - len(failed)} of {len(results)} cases within {TOLERANCE:g}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
