"""VAE recipe trials (issue 20): learning curves, held-out PSNR against training seconds.

Trains the same AutoencoderKL as train_vae.py (models.make_vae(): the decoder keeps the ldm layout
latup reads) with a recipe given on the command line, and every --eval-every seconds of training
scores the posterior-mean reconstruction of the held-out images' 256x256 center crops (8-bit PSNR,
metrics.psnr). Evaluation time is not counted as training time. Stops at --seconds of training
(or --steps, or at the wall-clock --deadline, whichever comes first) and saves a checkpoint that
--resume continues (model, Adam state, crop generator, seconds so far).

    tools/.venv/bin/python tools/train/vae_trial.py --name b --crop 128 --batch 4 --lr 2e-3 \
        --mse 1 --seconds 700

Writes build/train_trial/<name>.pt and <name>.jsonl (one line per evaluation). A trial, not the
committed models: train_vae.py and ref_data/trained/ are untouched.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import data  # noqa: E402
import evaluate  # noqa: E402
import metrics as M  # noqa: E402
import models  # noqa: E402
import train_vae  # noqa: E402

OUT = os.path.join(data.ROOT, "build", "train_trial")


def evaluate(vae, imgs):
    vae.eval()
    out = {}
    with torch.no_grad():
        for n, a in imgs:
            y = vae.decode(vae.encode(data.to_tensor(a)).latent_dist.mean).sample
            out[n] = M.psnr(M.to_u8_vae(y), a)
    vae.train()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--batch", type=int, default=6)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--sched", choices=["const", "cos"], default="const",
                    help="const after warm-up, or cosine to 2%% over --seconds of training time")
    ap.add_argument("--l1", type=float, default=1.0)
    ap.add_argument("--mse", type=float, default=0.0)
    ap.add_argument("--kl", type=float, default=1e-5)
    ap.add_argument("--seconds", type=float, default=600, help="training seconds (cumulative)")
    ap.add_argument("--steps", type=int, default=10 ** 9)
    ap.add_argument("--deadline", type=float, default=None, help="unix time to stop and save by")
    ap.add_argument("--eval-every", type=float, default=90, help="training seconds")
    ap.add_argument("--eval-side", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=12001)
    ap.add_argument("--resume", default=None)
    ap.add_argument("--init", choices=["random", "passthrough"], default="random",
                    help="the decoder's start: diffusers' random init, or "
                         "train_vae.passthrough_init")
    ap.add_argument("--encoder", choices=["random", "pca"], default="random",
                    help="the linear patch encoder (models.make_vae) at random, or as the PCA "
                         "code (train_vae.pca_encoder_init)")
    a = ap.parse_args()
    common.seed_all(a.seed, a.threads)
    os.makedirs(OUT, exist_ok=True)
    vae = models.make_vae()
    train = data.train_images()
    fit = train_vae.pca_fit(train) if a.encoder == "pca" or a.init == "passthrough" else None
    if a.encoder == "pca":
        train_vae.pca_encoder_init(vae.encoder, fit)
    if a.init == "passthrough":
        train_vae.passthrough_init(vae, *train_vae.pca_block_mean(fit))
    vae.train()
    params = [p for p in vae.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=a.lr, betas=(0.9, 0.99))
    crops = data.Crops(train, a.seed)
    imgs = [(n, evaluate.center(img, a.eval_side)) for n, img in data.test_images()]
    step, trained_s, log = 0, 0.0, []
    if a.resume:
        ck = torch.load(a.resume, weights_only=False)
        vae.load_state_dict(ck["state_dict"])
        opt.load_state_dict(ck["opt"])
        crops.rng.bit_generator.state = ck["rng"]
        step, trained_s, log = ck["step"], ck["seconds"], ck["log"]
    npar = sum(p.numel() for p in vae.parameters())
    ndec = sum(p.numel() for p in vae.decoder.parameters())
    print(f"trial {a.name}: {vars(a)}; params {npar} (decoder {ndec}); start step {step}, "
          f"{trained_s:.0f}s", flush=True)
    jl = open(os.path.join(OUT, a.name + ".jsonl"), "a")

    def record(loss_avg):
        ps = evaluate(vae, imgs)
        r = {"step": step, "seconds": round(trained_s, 1), "mean": float(np.mean(list(ps.values()))),
             "psnr": ps, "loss": loss_avg, "utc": time.strftime("%H:%M:%S", time.gmtime())}
        log.append(r)
        jl.write(json.dumps(r) + "\n")
        jl.flush()
        print(f"{a.name} step {step} {trained_s:.0f}s mean {r['mean']:.2f} dB  " +
              " ".join(f"{k} {v:.2f}" for k, v in ps.items()) +
              (f"  loss {loss_avg:.4f}" if loss_avg is not None else ""), flush=True)

    if not log:
        record(None)
    next_eval = trained_s + a.eval_every
    acc, nacc = 0.0, 0
    while trained_s < a.seconds and step < a.steps:
        if a.deadline and time.time() > a.deadline:
            print(f"{a.name}: deadline reached", flush=True)
            break
        t0 = time.time()
        if step < a.warmup:
            lr = a.lr * (step + 1) / a.warmup
        elif a.sched == "cos":
            t = min(1.0, trained_s / a.seconds)
            lr = a.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))
        else:
            lr = a.lr
        for g in opt.param_groups:
            g["lr"] = lr
        x = crops.batch(a.batch, a.crop)
        post = vae.encode(x).latent_dist
        y = vae.decode(post.mean).sample
        d = y - x
        loss = a.l1 * d.abs().mean() + a.mse * (d * d).mean()
        kl = post.kl().mean() / post.mean[0].numel()
        opt.zero_grad(set_to_none=True)
        (loss + a.kl * kl).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        acc += loss.item()
        nacc += 1
        trained_s += time.time() - t0
        if trained_s >= next_eval:
            record(acc / nacc)
            acc, nacc = 0.0, 0
            next_eval = trained_s + a.eval_every
    if nacc:
        record(acc / nacc)
    torch.save({"state_dict": vae.state_dict(), "opt": opt.state_dict(),
                "rng": crops.rng.bit_generator.state, "step": step, "seconds": trained_s,
                "log": log, "args": vars(a)}, os.path.join(OUT, a.name + ".pt"))
    print(f"{a.name}: {step} steps, {trained_s:.0f} s of training, saved", flush=True)


if __name__ == "__main__":
    main()
