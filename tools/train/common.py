"""Shared pieces of the trainers in tools/train/: the seeded loop (Adam, warm-up then cosine
learning rate, gradient clipping, progress log) and the checkpoint paths."""
import math
import os
import random
import time

import numpy as np
import torch

from data import ROOT

OUT = os.path.join(ROOT, "build", "train")


def seed_all(seed, threads):
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    torch.set_num_threads(threads)


def lr_at(step, steps, lr, warmup):
    if step < warmup:
        return lr * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))


def train_loop(name, params, steps, lr, warmup, loss_fn, log_every=50):
    """loss_fn(step) -> (loss tensor, dict of floats to log). Returns seconds spent."""
    params = [p for p in params if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.99))
    t0 = time.time()
    acc, n_acc = {}, 0
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, lr, warmup)
        loss, logs = loss_fn(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        for k, v in logs.items():
            acc[k] = acc.get(k, 0.0) + v
        n_acc += 1
        if (step + 1) % log_every == 0 or step + 1 == steps:
            el = time.time() - t0
            msg = " ".join(f"{k} {v / n_acc:.4f}" for k, v in acc.items())
            print(f"{name} step {step + 1}/{steps} {msg} lr {opt.param_groups[0]['lr']:.2e} "
                  f"{el:.0f}s (eta {el / (step + 1) * (steps - step - 1):.0f}s)", flush=True)
            acc, n_acc = {}, 0
    return time.time() - t0


def psnr(a, b):
    """a, b: float tensors in [-1,1], quantised to 8 bits as the PNGs are; PSNR in dB."""
    qa = torch.round((a.clamp(-1, 1) + 1) * 127.5)
    qb = torch.round((b.clamp(-1, 1) + 1) * 127.5)
    mse = ((qa - qb) ** 2).mean().item()
    return 10 * math.log10(255.0 ** 2 / max(mse, 1e-10))
