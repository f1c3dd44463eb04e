#!/usr/bin/env python3
"""Trains a model exported by `vaec export --to pytorch` with DistributedDataParallel.

    vaec export samples/mnist.vae --to pytorch -o mnist_pytorch.py
    torchrun --nproc_per_node 2 scripts/export/train_ddp.py mnist_pytorch.py --out runs/mnist-ddp
    vaec import runs/mnist-ddp/checkpoint.safetensors --model samples/mnist.vae -o runs/mnist-ddp/vaec.safetensors
    vaec eval samples/mnist.vae --checkpoint runs/mnist-ddp/vaec.safetensors

It runs the model file's recipe split over the processes, so that it is the run `vaec run` makes: from
vaec's random stream (the exported VaecRandom: vaec's initial parameters, shuffles and ε), each epoch one
shuffle of the training set (the same on every process), each step one global batch of the train block's
size (128 for samples/mnist.vae) cut into one slice per process (64 each with two processes), the last
partial global batch dropped, Adam with the train block's settings, β from the exported BetaController. DistributedDataParallel averages the gradients of the per-process losses; each is a mean
over its slice, so the average is the gradient of the mean over the global batch (for `batch: sum` the
loss is scaled by the number of processes to make it the global sum). The controllers (GECO, PI control)
see the global batch's mean reconstruction and KL (an all-reduce), so every process holds the same β.
Terms of the batch as a whole (optimal σ, free bits, capacity: BATCH_LEVEL_TERMS) are computed on each
process's slice, as BatchNorm is without SyncBatchNorm; with one process they are exactly vaec's.

After every epoch process 0 prints the train −ELBO (over all processes) and the test −ELBO with one
posterior sample per example, in nats per example, and at the end writes the parameters as a vaec
checkpoint. CPU processes use the gloo backend; --backend nccl with CUDA puts each process on its GPU.
"""
import argparse
import importlib.util
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


def load_module(path):
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("module", help="a module written by `vaec export --to pytorch`")
    parser.add_argument("--epochs", type=int, default=None, help="default: the model file's")
    parser.add_argument("--seed", type=int, default=None, help="default: the model file's")
    parser.add_argument("--out", default=None, help="where to write checkpoint.safetensors")
    parser.add_argument("--backend", default="gloo")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads per process")
    args = parser.parse_args()

    dist.init_process_group(args.backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}") if args.backend == "nccl" else torch.device("cpu")
    torch.set_num_threads(args.threads)
    m = load_module(args.module)
    seed = m.TRAIN["seed"] if args.seed is None else args.seed
    epochs = m.TRAIN["epochs"] if args.epochs is None else args.epochs
    batch = m.TRAIN["batch"]
    if batch % world != 0:
        sys.exit(f"the global batch {batch} does not split into {world} equal slices")
    per_process = batch // world

    # vaec's random stream, identical on every process: vaec's initial parameters, its shuffle each epoch and
    # its ε for the whole global batch each step (every process draws all of it and takes its rows), so the
    # run is `vaec run`'s run up to float32 rounding (DDP also broadcasts process 0's parameters).
    random = m.VaecRandom(seed)
    inner = m.Model()
    inner.load_state_dict({name: torch.from_numpy(value) for name, value in m.vaec_initial_parameters(random).items()})
    model = DistributedDataParallel(inner.to(device))
    optimizer = m.make_optimizer(model)
    controller = m.BetaController()
    source_x = m.load_data("data")
    train_x = m.binarized(source_x, seed, 0)
    test_x = m.binarized(m.load_data("test"), seed, -1) if m.TRAIN["test"] else None
    steps_per_epoch = len(train_x) // batch
    total = steps_per_epoch * epochs
    loss_scale = float(world) if m.BATCH == "sum" else 1.0
    if rank == 0:
        print(f"{m.MODEL_NAME}: {world} processes ({args.backend}), global batch {batch} = {world} × {per_process}, "
              f"{steps_per_epoch} steps per epoch, {epochs} epochs"
              + (f"; per-slice batch-level terms: {', '.join(m.BATCH_LEVEL_TERMS)}" if m.BATCH_LEVEL_TERMS and world > 1 else ""),
              flush=True)
    step = 0
    for epoch in range(1, epochs + 1):
        start = time.time()
        if m.TRAIN["binarize"] == "dynamic" and epoch > 1:
            train_x = m.binarized(source_x, seed, epoch - 1)   # vaec's fresh draw each epoch
        order = random.permutation(len(train_x))
        sums = torch.zeros(3, dtype=torch.float64)
        for i in range(steps_per_epoch):
            first = i * batch + rank * per_process
            x = torch.from_numpy(train_x[order[first:first + per_process]]).to(device)
            noise = random.normal(batch * m.LATENTS).reshape((batch,) + m.LATENT_SHAPE)
            eps = torch.from_numpy(noise[rank * per_process:(rank + 1) * per_process]).to(device)
            hypers = controller.hypers(step, steps_per_epoch, total)
            optimizer.zero_grad(set_to_none=True)
            terms = model(x, eps, hypers)
            (terms["loss"] * loss_scale).backward()
            optimizer.step()
            figures = torch.tensor([terms["reconstruction"].item(), terms["kl"].item(), float(per_process)], dtype=torch.float64)
            dist.all_reduce(figures)
            controller.observe(float(figures[0] / figures[2]), float(figures[1] / figures[2]))
            sums += figures
            step += 1
        reconstruction, kl, n = (float(v) for v in sums)
        line = f"epoch {epoch:3d}  train -ELBO {(reconstruction + kl) / n:9.3f} (recon {reconstruction / n:8.3f}, KL {kl / n:7.3f})"
        if rank == 0:
            if test_x is not None:
                test_r, test_k = m.evaluate(model.module, test_x, seed + epoch)
                line += f"  test -ELBO {test_r + test_k:9.3f} (recon {test_r:8.3f}, KL {test_k:7.3f})"
            beta = hypers.get("beta", 1.0) / hypers.get("recon_weight", 1.0)
            print(line + f"  β {beta:.4g}  {time.time() - start:.1f} s", flush=True)
        dist.barrier()
    if rank == 0 and args.out:
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, "checkpoint.safetensors")
        m.save_vaec_checkpoint(path, model.module, step=step, epoch=epochs)
        print(f"wrote {path} (a vaec checkpoint: vaec eval/report/grad read it)", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
