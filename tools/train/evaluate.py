"""Held-out evaluation of the three paths (docs/results.md), in PyTorch with the committed weights:

  bicubic  decode the 1x latent, bicubic x2
  lua      LUA x2 on the latent, decode at 2x
  pixel    decode the 1x latent, SwinIR x2 on the 8-bit decode

Each held-out image (center crop, at most MAX_SIDE, sides multiples of 16) is the ground truth;
the latent is the trained encoder's posterior mean of its antialiased bicubic /2. Also reported:
the VAE's own ceiling (encode + decode of the ground truth itself) and plain bicubic x2 of the
true half-size image (no VAE). Writes build/eval/results.json and, per image, the latent and the
ground truth (build/eval/<name>_latent.npy, <name>_gt.png) for build/latup_demo's C timings.

    tools/.venv/bin/python tools/train/evaluate.py
"""
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import metrics as M  # noqa: E402
import models  # noqa: E402

MAX_SIDE = 512
OUT = os.path.join(data.ROOT, "build", "eval")


def center(a, s=MAX_SIDE):
    h, w = min(a.shape[0], s), min(a.shape[1], s)
    y, x = (a.shape[0] - h) // 2, (a.shape[1] - w) // 2
    return a[y:y + h, x:x + w]


def main():
    torch.set_num_threads(int(os.environ.get("EVAL_THREADS", "2")))
    from PIL import Image
    os.makedirs(OUT, exist_ok=True)
    vae = models.load_encoder()
    lua = models.load_trained("lua")
    sw = models.load_trained("swinir")
    rows = []
    t0 = time.time()
    with torch.no_grad():
        for name, img in data.test_images():
            gt = center(img)
            x = data.to_tensor(gt)
            lr = data.downscale(x, 2).clamp(-1, 1)
            z = vae.encode(lr).latent_dist.mean
            dec1 = M.to_u8_vae(vae.decode(z).sample)
            r = {"image": name, "size": [gt.shape[1], gt.shape[0]]}
            outs = {
                "bicubic": M.to_u8_unit(M.bicubic_x2(M.from_u8(dec1))),
                "lua": M.to_u8_vae(vae.decode(lua(z, 2)).sample),
                "pixel": M.to_u8_unit(sw(M.from_u8(dec1))),
                "vae_ceiling": M.to_u8_vae(vae.decode(vae.encode(x).latent_dist.mean).sample),
                "bicubic_no_vae": M.to_u8_unit(M.bicubic_x2(M.from_u8(M.to_u8_vae(lr)))),
            }
            for k, o in outs.items():
                r[k] = [M.psnr(o, gt), M.ssim(o, gt)]
            rows.append(r)
            print(f"{name:12s} {gt.shape[1]}x{gt.shape[0]}  " + "  ".join(
                f"{k} {v[0]:.2f}/{v[1]:.3f}" for k, v in r.items() if isinstance(v, list)
                and k != "size"), flush=True)
            np.save(os.path.join(OUT, f"{name}_latent.npy"), z[0].numpy().astype(np.float32))
            Image.fromarray(gt).save(os.path.join(OUT, f"{name}_gt.png"))
            for k in ("bicubic", "lua", "pixel"):
                Image.fromarray(outs[k]).save(os.path.join(OUT, f"{name}_{k}.png"))
    mean = {k: [float(np.mean([r[k][i] for r in rows])) for i in (0, 1)]
            for k in rows[0] if k not in ("image", "size")}
    print("mean         " + "  ".join(f"{k} {v[0]:.2f}/{v[1]:.3f}" for k, v in mean.items()))
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump({"rows": rows, "mean": mean, "seconds": time.time() - t0,
                   "torch_version": torch.__version__}, f, indent=1)


if __name__ == "__main__":
    main()
