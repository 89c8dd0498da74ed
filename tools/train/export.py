"""Write the trained models (build/train/*.pt) to ref_data/trained/ in the layouts latup reads:
safetensors, F16 (I64 index buffers), gzip (deterministic), metadata = config + training recipe +
versions. After this, every other tool loads the committed F16 values (models.load_trained).

    tools/.venv/bin/python tools/train/export.py [--only vae|lua|swinir ...]
"""
import json
import os
import platform
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import models  # noqa: E402
import st_io  # noqa: E402


def tensors_f16(sd, keep_f32=()):
    out = []
    for k, v in sd.items():
        a = v.detach().cpu().numpy()
        if a.dtype == np.int64:
            out.append((k, a, "I64"))
        elif k in keep_f32:
            out.append((k, a.astype(np.float32), "F32"))
        else:
            out.append((k, a.astype(np.float16).astype(np.float32), "F16"))
    return out


def meta_for(kind, ck, config):
    import diffusers
    return dict(format="pt", model=kind, config=json.dumps(config, separators=(",", ":")),
                trained="tools/train/train_all.sh (issues 12, 20): small model trained on CPU on "
                        "Debian wallpapers + scikit-image photos; NOT a released checkpoint",
                seed=str(ck["seed"]), steps=str(ck["steps"]), threads=str(ck["threads"]),
                train_seconds=f"{ck['seconds']:.0f}", recipe=json.dumps(ck["recipe"]),
                weights_dtype="F16 (trained in fp32, rounded to nearest)",
                torch_version=torch.__version__, diffusers_version=diffusers.__version__,
                numpy_version=np.__version__, python_version=platform.python_version())


def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", action="append", choices=["vae", "lua", "swinir"])
    a = ap.parse_args()
    os.makedirs(models.TRAINED, exist_ok=True)
    total = 0
    for kind in a.only or ("vae", "lua", "swinir"):
        ck = torch.load(os.path.join(common.OUT, f"{kind}.pt"))
        if kind == "vae":
            m = models.make_vae()
            m.load_state_dict(ck["state_dict"])
            sd = {k: torch.from_numpy(v) for k, v in models.vae_decoder_ldm_state(m).items()}
            # the encoder (one 8x8 stride-8 conv, 6,176 parameters) in F32, as trained: latup's
            # encode then sees the very values the Python evaluation encodes with
            enc = {k: v.detach().float() for k, v in m.state_dict().items() if k.startswith("encoder.")}
            assert sorted(enc) == ["encoder.bias", "encoder.weight"], sorted(enc)
            sd = dict(sorted({**sd, **enc}.items()))
            cfg = dict(models.VAE_CFG, family="flux-like (16 channels, no post_quant_conv)",
                       encoder=f"patch: one {models.ENCODER_PATCH}x{models.ENCODER_PATCH} stride-"
                               f"{models.ENCODER_PATCH} conv, 3 -> 32 (mean, logvar), F32")
        elif kind == "lua":
            sd = ck["state_dict"]
            cfg = models.LUA_CFG
        else:
            sd = ck["state_dict"]
            cfg = dict(models.SWINIR_CFG, in_chans=3, img_range=1.0, resi_connection="1conv")
        keep = ("encoder.weight", "encoder.bias") if kind == "vae" else ()
        n = st_io.save(models.FILES[kind], tensors_f16(sd, keep), meta_for(kind, ck, cfg), compress=True)
        nparams = sum(v.numel() for k, v in sd.items() if v.dtype != torch.int64
                      and not k.endswith("attn_mask"))
        total += n
        print(f"{os.path.relpath(models.FILES[kind], common.ROOT)}: {n:,} bytes, "
              f"{nparams:,} parameters, trained {ck['steps']} steps in {ck['seconds']:.0f} s")
        models.load_trained(kind)  # loads strictly
    print(f"total {total:,} bytes")


if __name__ == "__main__":
    main()
