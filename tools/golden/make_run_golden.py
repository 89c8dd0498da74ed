"""Golden data for `latup run` (LUA upscale, then VAE decode): the composition of the two
PyTorch references on committed weights, so the C pipeline is checked end to end.

  ref_data/run/golden_small_flux.safetensors
    input     [1,16,16,24]  the small LUA case's unpadded input (ref_data/small/golden_nopad)
    out.x2    [1,16,32,48]  LUA x2 (tools/reference/lua_ref.py, weights ref_data/small/model.safetensors.gz)
    out       [1,3,64,96]   diffusers AutoencoderKL decode of out.x2 (flux_small: two levels, x2;
                            ref_data/vae/flux_small.ldm.safetensors.gz)

Run: tools/.venv/bin/python tools/golden/make_run_golden.py   (deterministic: one thread, no dates)
"""
import json
import os
import sys

import numpy as np
import torch

sys.path[:0] = [os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), d) for d in ("reference", "golden")]  # the sibling groups of tools/
import lua_ref  # noqa: E402
import make_golden  # noqa: E402
import make_vae_golden  # noqa: E402
import st_io  # noqa: E402
import vae_ref  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_floats(path):
    tensors, meta, order = st_io.load(path)
    return {k: torch.from_numpy(st_io.as_float(tensors[k][0], tensors[k][2]).copy()) for k in order}


def main():
    torch.set_num_threads(1)
    lua_cfg = make_golden.CASES["small"]["cfg"]
    lua = lua_ref.make_model(lua_cfg)
    lua.load_state_dict(load_floats(os.path.join(ROOT, "ref_data/small/model.safetensors.gz")), strict=True)
    lua.eval()
    vcase = make_vae_golden.CASES["flux_small"]
    vcfg = make_vae_golden.full_cfg(vcase)
    ldm_sd = {k: v.numpy() for k, v in load_floats(os.path.join(ROOT, "ref_data/vae/flux_small.ldm.safetensors.gz")).items()}
    vae = vae_ref.make_diffusers_vae(vcfg, ldm_sd)
    gold, _, _ = st_io.load(os.path.join(ROOT, "ref_data/small/golden_nopad.safetensors"))
    x = torch.from_numpy(np.array(gold["input"][2]))
    with torch.no_grad():
        up = lua(x, 2)
        img = vae.decode(up).sample
    assert np.array_equal(up.numpy(), gold["out.x2"][2]), "LUA reference differs from the committed golden"
    meta = {"case": "run small LUA x2 + flux_small VAE",
            "lua_weights": "ref_data/small/model.safetensors.gz",
            "vae_weights": "ref_data/vae/flux_small.ldm.safetensors.gz",
            "generator": "tools/golden/make_run_golden.py", "date": "not recorded (deterministic output)",
            "torch_version": torch.__version__}
    try:
        import diffusers
        meta["diffusers_version"] = diffusers.__version__
    except ImportError:
        pass
    out = os.path.join(ROOT, "ref_data/run/golden_small_flux.safetensors")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    size = st_io.save(out, [("input", x.numpy(), "F32"), ("out.x2", up.numpy(), "F32"),
                            ("out", img.numpy(), "F32")], meta)
    print(f"{os.path.relpath(out, ROOT)}: {size:,} bytes; image {list(img.shape)}, "
          f"max |x| {float(img.abs().max()):.3f}")


if __name__ == "__main__":
    main()
