"""Train the small LUA (released layout: heads.x2 and heads.x4) in latent space.

    tools/.venv/bin/python tools/train/train_lua.py [--steps N] [--threads T]

Data: fresh random 192x192 crops (with flips) of the training images at every step, encoded by
the trained VAE's encoder (posterior mean; the encoder is one strided conv, so encoding costs
next to nothing): the crop itself (24x24 latent, the target), and its antialiased bicubic /2 and
/4 (12x12 and 6x6 latents, the inputs of heads.x2 and heads.x4). Loss: L1 in latent space, x2 +
x4, each latent channel weighted by how much the trained decoder's pixels move per unit of it
(measured once on training crops), so the loss ranks errors as the decoded picture does. Needs
build/train/vae.pt; writes build/train/lua.pt.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import data  # noqa: E402
import models  # noqa: E402

SEED = 12003
HR_CROP, BATCH, LR, WARMUP = 192, 8, 4e-4, 50


def load_encoder():
    vae = models.make_vae()
    vae.load_state_dict(torch.load(os.path.join(common.OUT, "vae.pt"))["state_dict"])
    vae.eval()
    return vae


def encode_crops(vae, crops, n):
    """n fresh crops -> {1: target latent, 2: latent of the /2 image, 4: of the /4 image}."""
    hr = crops.batch(n, HR_CROP)
    with torch.no_grad():
        return {s: vae.encode(hr if s == 1 else data.downscale(hr, s).clamp(-1, 1))
                .latent_dist.mean for s in (1, 2, 4)}


def channel_weights(vae, crops):
    """Per latent channel: the RMS change of the decoded pixels per unit change of the channel
    (finite difference, 0.1, on 4 training crops), normalised to mean 1."""
    z = encode_crops(vae, crops, 4)[1]
    w = []
    with torch.no_grad():
        y0 = vae.decode(z).sample
        for k in range(z.shape[1]):
            dz = z.clone()
            dz[:, k] += 0.1
            w.append(((vae.decode(dz).sample - y0) ** 2).mean().sqrt().item() / 0.1)
    w = torch.tensor(w)
    return w / w.mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    common.seed_all(SEED, a.threads)
    vae = load_encoder()
    crops = data.Crops(data.train_images(), SEED)
    t0 = time.time()
    w = channel_weights(vae, crops).view(1, -1, 1, 1)
    data_secs = time.time() - t0
    print("lua: latent channel weights " + " ".join(f"{v:.2f}" for v in w.flatten().tolist()),
          flush=True)
    # what the trained heads are measured against: the input latent upscaled bicubically
    z = encode_crops(vae, crops, 32)
    for s in (2, 4):
        b = F.interpolate(z[s], scale_factor=s, mode="bicubic", align_corners=False)
        print(f"lua data: bicubic x{s} latent weighted L1 vs target "
              f"{((b - z[1]).abs() * w).mean().item():.4f}", flush=True)

    lua = models.make_lua()
    lua.train()

    def loss_fn(step):
        z = encode_crops(vae, crops, BATCH)
        l2 = ((lua(z[2], 2) - z[1]).abs() * w).mean()
        l4 = ((lua(z[4], 4) - z[1]).abs() * w).mean()
        return l2 + l4, {"l1_x2": l2.item(), "l1_x4": l4.item()}

    secs = common.train_loop("lua", lua.parameters(), a.steps, LR, WARMUP, loss_fn,
                             log_every=200)
    torch.save({"state_dict": lua.state_dict(), "seconds": secs, "data_seconds": data_secs,
                "steps": a.steps, "threads": a.threads, "seed": SEED,
                "channel_weights": w.flatten().tolist(),
                "recipe": dict(hr_crop=HR_CROP, batch=BATCH, lr=LR, warmup=WARMUP,
                               loss="channel-weighted latent L1, x2 + x4, fresh crops")},
               os.path.join(common.OUT, "lua.pt"))
    print(f"lua: {a.steps} steps in {secs:.0f} s + weights {data_secs:.0f} s "
          f"({time.strftime('%H:%M:%S')})")


if __name__ == "__main__":
    main()
