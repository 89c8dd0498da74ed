"""Tiled vs exact decoding on the trained decoder (docs/results.md, docs/vae.md).

A held-out wallpaper photo (EveningGlow, 2560x1600) is resized (Lanczos; 1.5x up for 4K) and
center-cropped to 2K (1920x1080) and 4K (3840x2160), and encoded by
the trained encoder (in 512-pixel tiles with 128-pixel margins, which bounds the memory of any
encoder; the linear patch encoder of issue 20 gives the same latent as one whole-image pass),
giving latents of 240x135 and 480x270 (cached in build/tiling/: delete them after retraining). Each latent is
decoded by the CLI exactly and with several `--tile T --overlap O`; every tiled output is compared
with the exact one (raw decoder output, range [-1,1], and 8-bit PNG values). Writes
build/tiling/results.json, docs/img/tiling_seam.png (the worst difference, cropped) and
docs/img/tiling_frame.png (the whole frame, exact | tiled | difference).

    tools/.venv/bin/python tools/train/tiling.py [--latup build/latup] [--only 2k]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data  # noqa: E402
import models  # noqa: E402

OUT = os.path.join(data.ROOT, "build", "tiling")
IMAGE = "EveningGlow"
SIZES = {"2k": (1920, 1080), "4k": (3840, 2160)}
CONFIGS = {"2k": [(32, 8), (64, 8), (64, 16), (64, 32), (128, 32)],
           "4k": [(128, 32)]}
ENC_CORE, ENC_MARGIN = 512, 128


def encode_tiled(vae, x):
    """x [1,3,H,W] -> posterior mean [1,16,H/8,W/8], tile by tile; each tile is encoded with a
    margin of real context and only its core is kept."""
    _, _, H, W = x.shape
    z = torch.zeros(1, 16, H // 8, W // 8)
    for y0 in range(0, H, ENC_CORE):
        for x0 in range(0, W, ENC_CORE):
            y1, x1 = min(y0 + ENC_CORE, H), min(x0 + ENC_CORE, W)
            ya, xa = max(0, y0 - ENC_MARGIN), max(0, x0 - ENC_MARGIN)
            yb, xb = min(H, y1 + ENC_MARGIN), min(W, x1 + ENC_MARGIN)
            t = vae.encode(x[:, :, ya:yb, xa:xb]).latent_dist.mean
            z[:, :, y0 // 8:y1 // 8, x0 // 8:x1 // 8] = \
                t[:, :, (y0 - ya) // 8:(y1 - ya) // 8, (x0 - xa) // 8:(x1 - xa) // 8]
    return z


def make_latent(key):
    path = os.path.join(OUT, f"{IMAGE}_{key}_latent.npy")
    if os.path.isfile(path):
        return path
    from PIL import Image
    Image.MAX_IMAGE_PIXELS = None
    img = Image.open(data.wallpaper_file(IMAGE)).convert("RGB")
    W, H = SIZES[key]
    s = max(W / img.size[0], H / img.size[1])
    img = img.resize((round(img.size[0] * s), round(img.size[1] * s)), Image.LANCZOS)
    x0, y0 = (img.size[0] - W) // 2, (img.size[1] - H) // 2
    img = img.crop((x0, y0, x0 + W, y0 + H))
    vae = models.load_encoder()
    with torch.no_grad():
        z = encode_tiled(vae, data.to_tensor(np.asarray(img)))
    np.save(path, z[0].numpy().astype(np.float32))
    print(f"{key}: latent {list(z.shape[1:])} (std {z.std().item():.3f})", flush=True)
    return path


def decode(latup, latent, out, tile=0, overlap=0):
    if os.path.isfile(out):
        return None
    cmd = [latup, "decode", "--vae", models.FILES["vae"], "--in", latent, "--out", out,
           "--threads", "2", "--max-memory", "20G", "--verbose"]
    if tile:
        cmd += ["--tile", str(tile), "--overlap", str(overlap)]
    t0 = time.time()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr[-2000:]}")
    if not tile and "tiled" in r.stderr:
        raise RuntimeError(f"the exact decode was tiled: {r.stderr[-1000:]}")
    secs = time.time() - t0
    print(f"  {' '.join(cmd[1:])}: {secs:.1f} s", flush=True)
    return secs


def u8(x):
    return np.round(np.clip(x * 0.5 + 0.5, 0, 1) * 255)


def seam_picture(exact, tiled, where, path, label):
    """exact | tiled | |difference| x 20, a 160x160 crop around the worst pixel, each 2x (nearest)."""
    from PIL import Image
    _, H, W = exact.shape
    s = 160
    y0 = int(np.clip(where[0] - s // 2, 0, H - s))
    x0 = int(np.clip(where[1] - s // 2, 0, W - s))
    a = u8(exact[:, y0:y0 + s, x0:x0 + s]).transpose(1, 2, 0)
    b = u8(tiled[:, y0:y0 + s, x0:x0 + s]).transpose(1, 2, 0)
    d = np.clip(np.abs(a - b) * 20, 0, 255)
    gap = np.full((s, 4, 3), 255.0)
    row = np.concatenate([a, gap, b, gap, d], axis=1).astype(np.uint8)
    im = Image.fromarray(row).resize((row.shape[1] * 2, s * 2), Image.NEAREST)
    im.save(path, optimize=True)
    print(f"  worst seam picture ({label}) -> {os.path.relpath(path, data.ROOT)}, crop at "
          f"y {y0}, x {x0}")
    return [y0, x0]


def overview_picture(exact, tiled, path):
    """The whole frame, exact | tiled | |difference| x 4, each downscaled to 480 wide: on an
    undertrained decoder tiling shifts whole tiles, not only the seams."""
    from PIL import Image
    a, b = u8(exact).transpose(1, 2, 0), u8(tiled).transpose(1, 2, 0)
    d = np.clip(np.abs(a - b) * 4, 0, 255)
    w = 480
    h = round(a.shape[0] * w / a.shape[1])
    ims = [Image.fromarray(x.astype(np.uint8)).resize((w, h), Image.BOX) for x in (a, b, d)]
    out = Image.new("RGB", (3 * w + 8, h), "white")
    for k, im in enumerate(ims):
        out.paste(im, (k * (w + 4), 0))
    out.save(path, optimize=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--latup", default=os.path.join(data.ROOT, "build", "latup"))
    ap.add_argument("--only", choices=sorted(SIZES))
    a = ap.parse_args()
    torch.set_num_threads(2)
    os.makedirs(OUT, exist_ok=True)
    res_path = os.path.join(OUT, "results.json")
    results = json.load(open(res_path)) if os.path.isfile(res_path) else {}
    commit = subprocess.run(["git", "-C", data.ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    worst = None
    for key in ([a.only] if a.only else list(SIZES)):
        lat = make_latent(key)
        ex_path = os.path.join(OUT, f"{key}_exact.npy")
        t = decode(a.latup, lat, ex_path)
        if t is not None:
            results[f"{key}/exact"] = dict(seconds=t)
        exact = np.load(ex_path)[0] if np.load(ex_path, mmap_mode="r").ndim == 4 else np.load(ex_path)
        ex8 = u8(exact)
        for T, O in CONFIGS[key]:
            p = os.path.join(OUT, f"{key}_t{T}_o{O}.npy")
            t = decode(a.latup, lat, p, T, O)
            tiled = np.load(p)
            tiled = tiled[0] if tiled.ndim == 4 else tiled
            d = np.abs(tiled - exact)
            d8 = np.abs(u8(tiled) - ex8)
            i = np.unravel_index(int(np.argmax(d)), d.shape)
            r = results.get(f"{key}/t{T}_o{O}", {})
            if t is not None:
                r["seconds"] = t
            r.update(tile=T, overlap=O, max_abs=float(d.max()), mean_abs=float(d.mean()),
                     p999_abs=float(np.quantile(d, 0.999)), max_abs_8bit=float(d8.max()),
                     mean_abs_8bit=float(d8.mean()),
                     frac_8bit_over_2=float((d8 > 2).mean()), worst_yx=[int(i[1]), int(i[2])],
                     max_exact=float(np.abs(exact).max()), image=list(exact.shape[1:]),
                     commit=commit)
            results[f"{key}/t{T}_o{O}"] = r
            print(f"  {key} tile {T} overlap {O}: max |d| {r['max_abs']:.4f}, mean {r['mean_abs']:.5f}"
                  f" (8-bit: max {r['max_abs_8bit']:.0f}, mean {r['mean_abs_8bit']:.3f})", flush=True)
            if worst is None or r["max_abs"] > worst[0]:
                worst = (r["max_abs"], key, T, O, exact, tiled, (i[1], i[2]))
            with open(res_path, "w") as f:
                json.dump(results, f, indent=1)
    if worst:
        _, key, T, O, exact, tiled, where = worst
        img = os.path.join(data.ROOT, "docs", "img", "tiling_seam.png")
        os.makedirs(os.path.dirname(img), exist_ok=True)
        results["worst_picture"] = dict(case=f"{key}/t{T}_o{O}",
                                        crop_yx=seam_picture(exact, tiled, where, img,
                                                             f"{key} tile {T} overlap {O}"))
        overview_picture(exact, tiled, img.replace("tiling_seam", "tiling_frame"))
        with open(res_path, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
