"""latup_nodes.py — ComfyUI custom nodes over the latup Python package (python/latup):

  LUA Upscale (latup)   LATENT -> LATENT   the latent upscaled x2 or x4 by a LUA checkpoint
  VAE Decode (latup)    LATENT -> IMAGE    the AutoencoderKL decoder on the CPU, tiled to a budget

ComfyUI's LATENT is a dict {"samples": tensor [B,C,H,W], ...} in the VAE's space (what its own
VAEDecode takes), and IMAGE is a float tensor [B,H,W,3] in [0,1]. The nodes take torch tensors (in
ComfyUI) or numpy arrays (tests, scripts) and give back the same kind. Checkpoints are named by
path, or by file name inside ComfyUI's model folders ("upscale_models" for LUA, "vae").
"""
import numpy as np

import latup

try:  # inside ComfyUI
    import folder_paths
except ImportError:
    folder_paths = None

try:
    import torch
except ImportError:
    torch = None

_models = {}  # (kind, path, options) -> loaded model: one load per checkpoint


def _resolve(name, folder):
    if folder_paths is not None:
        full = folder_paths.get_full_path(folder, name)
        if full:
            return full
    return name


def _model(kind, path, **options):
    key = (kind, path, tuple(sorted(options.items())))
    if key not in _models:
        _models[key] = latup.Lua(path) if kind == "lua" else latup.Vae(path, **options)
    return _models[key]


def _to_numpy(x):
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float32).contiguous().numpy(), True
    return np.asarray(x), False  # the package converts (and refuses what it cannot take)


def _like(y, as_torch):
    return torch.from_numpy(np.ascontiguousarray(y)) if as_torch else y


class LatupLuaUpscale:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "samples": ("LATENT",),
            "lua_model": ("STRING", {"default": "lua_flux.pth"}),
            "scale": ("INT", {"default": 2, "min": 2, "max": 4, "step": 2}),
            "threads": ("INT", {"default": 0, "min": 0, "max": 4096}),
        }}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "upscale"
    CATEGORY = "latent/latup"

    def upscale(self, samples, lua_model, scale=2, threads=0):
        x, as_torch = _to_numpy(samples["samples"])
        y = _model("lua", _resolve(lua_model, "upscale_models")).upscale(x, scale, threads=threads or None)
        out = dict(samples)
        out["samples"] = _like(y, as_torch)
        return (out,)


class LatupVaeDecode:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "samples": ("LATENT",),
            "vae_model": ("STRING", {"default": "ae.safetensors"}),
            "max_memory": ("STRING", {"default": ""}),
            "tile": ("INT", {"default": 0, "min": 0, "max": 8192}),
            "threads": ("INT", {"default": 0, "min": 0, "max": 4096}),
        }}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "decode"
    CATEGORY = "latent/latup"

    def decode(self, samples, vae_model, max_memory="", tile=0, threads=0):
        z, as_torch = _to_numpy(samples["samples"])
        vae = _model("vae", _resolve(vae_model, "vae"), max_memory=max_memory or None, tile=tile or None)
        img = vae.decode(z if z.ndim == 4 else z[None], threads=threads or None)
        return (_like(latup.to_unit(img), as_torch),)


NODE_CLASS_MAPPINGS = {"LatupLuaUpscale": LatupLuaUpscale, "LatupVaeDecode": LatupVaeDecode}
NODE_DISPLAY_NAME_MAPPINGS = {"LatupLuaUpscale": "LUA Upscale (latup)", "LatupVaeDecode": "VAE Decode (latup)"}
