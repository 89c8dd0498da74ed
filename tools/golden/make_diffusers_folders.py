#!/usr/bin/env python3
"""Writes the config.json files of the diffusers VAE folders that tests/test_vae_folder.c builds
(tests/data/diffusers/): the configuration of ref_data/vae's small VAEs as diffusers'
AutoencoderKL.save_pretrained writes it (vae_ref.diffusers_config, the config the golden data of
tools/golden/make_vae_golden.py was made from, plus "_class_name" and "_diffusers_version", keys
sorted, indent 2). The weights are not copied here: the test puts the committed
ref_data/vae/*.diffusers.safetensors.gz (inflated) and the torch.save zip of sd_small.ldm.pth.gz
beside them, so no weight bytes are committed twice.

    flux_small/config.json          a VAE folder (scaling_factor 0.3611, shift_factor 0.1159)
    sd_small_pipeline/model_index.json, vae/config.json
                                    a pipeline's root holding vae/ (scaling 0.18215, shift null)

    /usr/bin/python3 tools/golden/make_diffusers_folders.py   # numpy and torch (make_vae_golden's imports)
"""
import json
import os
import sys

sys.path[:0] = [os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), d) for d in ("reference", "golden")]
import make_vae_golden  # noqa: E402
import vae_ref  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "diffusers")
DIFFUSERS_VERSION = "0.31.0"  # tools/ci/setup_env.sh pins the reference at this version


def config_json(case):
    c = dict(_class_name="AutoencoderKL", _diffusers_version=DIFFUSERS_VERSION)
    c.update(vae_ref.diffusers_config(make_vae_golden.full_cfg(make_vae_golden.CASES[case])))
    return json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in c.items()}, indent=2, sort_keys=True) + "\n"


def write(rel, text):
    path = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    print(f"{os.path.relpath(path, ROOT)}: {len(text)} bytes")


def main():
    write("flux_small/config.json", config_json("flux_small"))
    write("sd_small_pipeline/vae/config.json", config_json("sd_small"))
    # a pipeline's root: model_index.json names its parts (only vae/ is here)
    index = {"_class_name": "StableDiffusionPipeline", "_diffusers_version": DIFFUSERS_VERSION,
             "vae": ["diffusers", "AutoencoderKL"]}
    write("sd_small_pipeline/model_index.json", json.dumps(index, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
