"""make_fixtures.py — ComfyUI .latent files for the tests, written the way ComfyUI's SaveLatent
node writes them (comfy.utils.save_torch_file -> safetensors): "latent_tensor" (the LATENT dict's
"samples", float32 [B,C,H,W]) and the empty marker "latent_format_version_0", with the prompt as
metadata; plus the same latent as .npy. Uses safetensors' numpy API, which writes the same bytes
as its torch API for float32 tensors. Fixed seed, reproducible:
    pip install numpy safetensors && python3 tests/data/latent/make_fixtures.py
"""
import json
import os

import numpy as np
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
rng = np.random.default_rng(20251110)
meta = {"prompt": json.dumps({"3": {"class_type": "KSampler", "inputs": {"seed": 1}}})}

# a FLUX-sized (16-channel) latent, batch of 2, as ComfyUI holds it: VAE space, decoder-ready
flux = rng.standard_normal((2, 16, 12, 10)).astype(np.float32)
save_file({"latent_tensor": flux, "latent_format_version_0": np.zeros((0,), np.float32)},
          os.path.join(HERE, "comfyui_flux_b2.latent"), metadata=meta)
np.save(os.path.join(HERE, "comfyui_flux_b2.npy"), flux)

# an old (pre-version-marker) SD latent: ComfyUI's LoadLatent multiplies it by 1 / 0.18215
sd = rng.standard_normal((1, 4, 8, 8)).astype(np.float32)
save_file({"latent_tensor": sd}, os.path.join(HERE, "comfyui_old_sd.latent"))
np.save(os.path.join(HERE, "comfyui_old_sd_loaded.npy"), sd * np.float32(1.0 / 0.18215))
print("numpy", np.__version__)
