"""Golden tiled decodes: the PyTorch reference decoding in tiles with latup's tiling and blending,
so the C tiled decode is checked against a reference, not only against loose bounds.

    tools/.venv/bin/python tools/golden/make_tiled_golden.py      # -> ref_data/vae/golden_tiled.safetensors

Tiling (the same rule as src/model/vae.c, written again here from docs/vae.md): tiles of T latent
pixels with overlap ov, step T - ov, count n <= T ? 1 : ceil((n - ov) / (T - ov)) per axis, tile t
at t*(T-ov), the last one flush with the edge; each tile decoded exactly by diffusers'
AutoencoderKL; blended with weight wy(y) * wx(x), w(i) = min(1, (i + .5)/lo, (n - i - .5)/hi) in
image pixels, lo/hi = ov * f on sides that have a neighbour (f = the decoder's upscale); the
image is sum(w * tile) / sum(w), all in fp32 in the same order as latup.

Cases: flux_small (ref_data/vae/flux_small.ldm.safetensors.gz) on a 23x19 latent, tiles 8
overlap 3 (3x3 tiles); the real widths (weights from the generator, as golden_real_widths) on a
16x12 latent, tiles 10 overlap 4 (2x2 tiles).
"""
import json
import os
import sys
import warnings

import numpy as np
import torch

sys.path[:0] = [os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), d) for d in ("reference", "golden")]  # the sibling groups of tools/
import make_vae_golden as mvg  # noqa: E402
import st_io  # noqa: E402
import vae_ref  # noqa: E402
import weightgen  # noqa: E402

warnings.filterwarnings("ignore")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INPUT_SEED = 777


def tile_count(n, T, ov):
    return 1 if n <= T else (n - ov + (T - ov) - 1) // (T - ov)


def tile_origin(t, n, T, ov):
    th = min(T, n)
    o = t * (T - ov)
    return n - th if o + th > n else o


def ramp(n, lo, hi):
    i = np.arange(n, dtype=np.float32)
    w = np.ones(n, dtype=np.float32)
    if lo > 0:
        w = np.minimum(w, np.where(i < lo, (i + np.float32(0.5)) / np.float32(lo), np.float32(1)))
    if hi > 0:
        w = np.minimum(w, np.where(i >= n - hi, (np.float32(n) - i - np.float32(0.5)) / np.float32(hi),
                                   np.float32(1)))
    return w.astype(np.float32)


def tiled_decode(model, z, T, ov, f):
    """z [1, zc, h, w] float32 -> [1, 3, f h, f w] float32, latup's tiling and blending."""
    _, _, h, w = z.shape
    nty, ntx = tile_count(h, T, ov), tile_count(w, T, ov)
    th, tw = min(T, h), min(T, w)
    H, W = h * f, w * f
    out = np.zeros((3, H, W), dtype=np.float32)
    wsum = np.zeros((H, W), dtype=np.float32)
    for ty in range(nty):
        for tx in range(ntx):
            y0, x0 = tile_origin(ty, h, T, ov), tile_origin(tx, w, T, ov)
            with torch.no_grad():
                tile = model.decode(torch.from_numpy(np.ascontiguousarray(z[:, :, y0:y0 + th, x0:x0 + tw]))).sample
            tile = tile[0].numpy().astype(np.float32)
            oh, ow = th * f, tw * f
            wy = ramp(oh, ov * f if ty > 0 else 0, ov * f if ty < nty - 1 else 0)
            wx = ramp(ow, ov * f if tx > 0 else 0, ov * f if tx < ntx - 1 else 0)
            wgt = (wy[:, None] * wx[None, :]).astype(np.float32)
            sl = (slice(y0 * f, y0 * f + oh), slice(x0 * f, x0 * f + ow))
            wsum[sl] += wgt
            out[(slice(None),) + sl] += wgt[None] * tile
    return (out / wsum[None])[None].astype(np.float32), nty * ntx


def main():
    torch.set_num_threads(1)
    tensors, cases = [], []
    # flux_small, from the committed ldm file
    case = mvg.CASES["flux_small"]
    cfg = mvg.full_cfg(case)
    sd, _, _ = st_io.loads(open(os.path.join(ROOT, "ref_data/vae/flux_small.ldm.safetensors.gz"), "rb").read())
    ldm = {k: (st_io.bf16_bits_to_f32(a) if dt == "BF16" else a.astype(np.float32)).reshape(shape)
           for k, (dt, shape, a) in sd.items()}
    runs = [("flux_small", vae_ref.make_diffusers_vae(cfg, ldm), cfg, (1, 16, 23, 19), 8, 3,
             "ref_data/vae/flux_small.ldm.safetensors.gz")]
    # the real widths, from the generator
    case = mvg.CASES["real_widths"]
    rcfg = mvg.full_cfg(case)
    w = vae_ref.gen_weights(rcfg, case["seed"], case["Lw"])
    runs.append(("real_widths", vae_ref.make_diffusers_vae(rcfg, w), rcfg, (1, 16, 16, 12), 10, 4,
                 "generated: ref_data/vae/golden_real_widths.safetensors"))
    for name, model, c, shape, T, ov, weights in runs:
        f = 2 ** (len(c["block_out_channels"]) - 1)
        z = weightgen.gen_input("tiled:" + name, shape, INPUT_SEED)
        y, ntiles = tiled_decode(model, z, T, ov, f)
        with torch.no_grad():
            exact = model.decode(torch.from_numpy(z)).sample.numpy()
        d = float(np.abs(y - exact).max() / np.abs(exact).max())
        print(f"{name}: latent {list(shape)}, tiles {T} overlap {ov} ({ntiles} tiles) -> {list(y.shape)}; "
              f"max|tiled - exact| / max|exact| = {d:.3e}")
        tensors += [(f"{name}/input", z, "F32"), (f"{name}/out", y, "F32")]
        cases.append(dict(case=name, weights=weights, tile=T, overlap=ov, tiles=ntiles,
                          tiled_vs_exact=d))
    meta = dict(cases=json.dumps(cases, separators=(",", ":")), generator="tools/golden/make_tiled_golden.py",
                tiling=__doc__.split("\n\n")[1], torch_version=torch.__version__,
                diffusers_version=__import__("diffusers").__version__, numpy_version=np.__version__,
                date="not recorded (deterministic output)")
    path = os.path.join(ROOT, "ref_data/vae/golden_tiled.safetensors")
    size = st_io.save(path, tensors, meta)
    print(f"{os.path.relpath(path, ROOT)}: {size:,} bytes")


if __name__ == "__main__":
    main()
