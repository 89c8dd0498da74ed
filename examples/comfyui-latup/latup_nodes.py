"""latup_nodes.py — ComfyUI custom nodes over the latup Python package (python/latup):

  LUA Upscale (latup)              LATENT -> LATENT   the latent upscaled x2 or x4 by a LUA checkpoint
  VAE Decode (latup)               LATENT + VAE -> IMAGE   the checkpoint's VAE, decoded on the CPU by latup
  VAE Decode (latup, VAE file)     LATENT -> IMAGE    a VAE file from models/vae, tiled to a budget
  VAE Encode (latup)               IMAGE + VAE -> LATENT   the checkpoint's VAE's encoder, run by latup
  VAE Encode (latup, VAE file)     IMAGE -> LATENT    the encoder of a VAE file from models/vae

ComfyUI's LATENT is a dict {"samples": tensor [B,C,H,W], ...} in the VAE's space (what its own
VAEDecode takes), and IMAGE is a float tensor [B,H,W,3] in [0,1]. The nodes take torch tensors (in
ComfyUI) or numpy arrays (tests, scripts) and give back the same kind. Inside ComfyUI the models
are picked from its folders ("upscale_models" for LUA, "vae") as its own loaders do, long calls
move its progress bar and stop at its Cancel button; outside it they are paths and nothing shows.
ComfyUI's modules are looked up at each use, so the nodes load and run without ComfyUI.
"""
import importlib
import json
import os
import struct
import tempfile
import weakref

import numpy as np

import latup

if not hasattr(latup, "Lua"):
    # ComfyUI releases before April 2025 register a custom node folder in sys.modules under the
    # folder's own name: a folder named "latup" then hides the package it needs.
    raise ImportError("latup nodes: 'import latup' found %r, not the latup package: this node folder was loaded "
                      "under the name 'latup' (ComfyUI names a custom node's module after its folder); link it as "
                      "custom_nodes/comfyui-latup instead (examples/comfyui-latup/README.md)"
                      % getattr(latup, "__file__", latup))


def _comfy(name):
    """One of ComfyUI's modules (folder_paths, comfy.utils, comfy.model_management), or None outside it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


# ---- models: picked from ComfyUI's folders, loaded once -------------------------------------------

_models = {}  # (kind, path) -> loaded model: one load per checkpoint


def _picker(folder, default):
    """A dropdown over the folder's files inside ComfyUI (as VAELoader's); a path outside it."""
    fp = _comfy("folder_paths")
    if fp is None:
        return ("STRING", {"default": default})
    return (fp.get_filename_list(folder),)


def _resolve(name, folder):
    fp = _comfy("folder_paths")
    if fp is None:
        return name
    full = fp.get_full_path(folder, name)
    if not full:
        raise FileNotFoundError("%r is not in ComfyUI's %r model folders (%s)"
                                % (name, folder, ", ".join(fp.get_folder_paths(folder))))
    return full


def _model(kind, path):
    """kind: "lua", or a VAE's part ("decoder", "encoder"): each node loads only the part it runs."""
    key = (kind, path)
    if key not in _models:
        _models[key] = latup.Lua(path) if kind == "lua" else latup.Vae(path, parts=kind)
    return _models[key]


# ---- the checkpoint's VAE ----------------------------------------------------------------------------

_from_comfy = weakref.WeakKeyDictionary()  # a ComfyUI VAE's first_stage_model -> {part: its latup.Vae}
# The tensors of each part in ComfyUI's (ldm) names, and the node that names the part in its errors
_PART_TENSORS = {"decoder": (("decoder.", "post_quant_conv."), "VAE Decode (latup)"),
                 "encoder": (("encoder.", "quant_conv."), "VAE Encode (latup)")}


def _as_float32(t):
    if hasattr(t, "detach"):  # a torch tensor (bfloat16 included, which numpy lacks)
        import torch
        return t.detach().to("cpu", torch.float32).contiguous().numpy()
    return np.ascontiguousarray(t, dtype=np.float32)


def _write_safetensors(f, tensors):
    """tensors as float32 safetensors: an 8-byte little-endian header length, the JSON header naming
    each tensor's dtype, shape and byte span (padded to 8 bytes), then the data in that order."""
    arrays, header, offset = [], {}, 0
    for name in sorted(tensors):
        a = _as_float32(tensors[name]).astype("<f4", copy=False)
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        arrays.append(a)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    f.write(struct.pack("<Q", len(h)))
    f.write(h)
    for a in arrays:
        f.write(a.tobytes())


def _vae_of(vae, part="decoder"):
    """latup's decoder or encoder (part) for ComfyUI's VAE object, made once per VAE and part. latup
    loads models from files only, so the part's tensors (of vae.first_stage_model's state dict, ldm
    names: decoder.* and post_quant_conv.*, or encoder.* and quant_conv.*) are written once to a
    temporary float32 safetensors file, loaded and the file removed: the cost is that write and read
    (4 bytes a parameter) and latup's own float32 copy of the part next to ComfyUI's while the VAE
    lives."""
    module = getattr(vae, "first_stage_model", None)
    if module is None or not hasattr(module, "state_dict"):
        raise TypeError("vae: a ComfyUI VAE (with .first_stage_model), got %s" % type(vae).__name__)
    try:
        return _from_comfy[module][part]
    except (KeyError, TypeError):
        pass
    prefixes, node = _PART_TENSORS[part]
    tensors = {k: v for k, v in module.state_dict().items() if k.startswith(prefixes)}
    if not tensors:
        raise ValueError("%s: this VAE (%s) has no %s* tensors: latup runs the AutoencoderKL %s of SD 1.x/2.x, "
                         "SDXL, SD3 and FLUX.1" % (node, type(module).__name__, prefixes[0], part))
    fd, path = tempfile.mkstemp(prefix="latup-vae-", suffix=".safetensors")
    try:
        with os.fdopen(fd, "wb") as f:
            _write_safetensors(f, tensors)
        try:
            v = latup.Vae(path, parts=part)
        except latup.LatupInputError as e:
            raise ValueError("%s: this VAE is not an AutoencoderKL %s latup runs (SD 1.x/2.x, SDXL, SD3, FLUX.1): %s"
                             % (node, part, e)) from e
    finally:
        os.unlink(path)
    try:
        _from_comfy.setdefault(module, {})[part] = v
    except TypeError:  # an object without weak references: loaded again next time
        pass
    return v


# ---- progress and cancellation --------------------------------------------------------------------


class _Progress:
    """A latup call's progress in ComfyUI: its progress bar, and its Cancel button, polled after each
    step (throw_exception_if_processing_interrupted raises; the exception stops the latup call and
    leaves the node)."""

    def __init__(self):
        self.utils = _comfy("comfy.utils")
        self.mm = _comfy("comfy.model_management")
        self.bar = None

    def __call__(self, done, total):
        if self.utils is not None:
            if self.bar is None:
                self.bar = self.utils.ProgressBar(total)
            self.bar.update_absolute(done, total)
        if self.mm is not None:
            self.mm.throw_exception_if_processing_interrupted()


def _progress():
    """progress= for a latup call: None outside ComfyUI, or with a library without the callback."""
    p = _Progress()
    if not latup.PROGRESS or (p.utils is None and p.mm is None):
        return None
    return p


# ---- the nodes ----------------------------------------------------------------------------------------

_THREADS = ("INT", {"default": 0, "min": 0, "max": 4096})
_VAE_OPTIONS = {
    "max_memory": ("STRING", {"default": ""}),  # empty: 3/4 of memory
    "tile": ("INT", {"default": 0, "min": 0, "max": 8192}),
    "threads": _THREADS,
}


def _decode(vae, samples, max_memory, tile, threads):
    # one loaded model serves every budget: ComfyUI runs one node at a time, and the package checks
    # these attributes at each call
    vae.max_memory = max_memory or latup.default_max_memory()
    vae.tile = tile or None
    z = samples["samples"]
    img = vae.decode(z if z.ndim == 4 else z[None], threads=threads or None, progress=_progress())
    return (latup.to_unit(img, range="[-1,1]"),)


def _encode(vae, pixels, max_memory, tile, threads):
    """ComfyUI's VAEEncode on latup: IMAGE [B,H,W,C] in [0,1], its first 3 channels (alpha dropped),
    centre-cropped to a multiple of the VAE's downsampling as ComfyUI's vae_encode_crop_pixels does,
    -> LATENT {"samples": [B,zc,H/8,W/8]}, the posterior mean in the VAE's space (what ComfyUI's
    VAEEncode gives and these nodes' decode takes)."""
    x = pixels if pixels.ndim == 4 else pixels[None]
    f = vae.downsampling
    H, W = (x.shape[1] // f) * f, (x.shape[2] // f) * f
    y0, x0 = (x.shape[1] % f) // 2, (x.shape[2] % f) // 2
    x = x[:, y0:y0 + H, x0:x0 + W, :3]
    x = x.permute(0, 3, 1, 2) if hasattr(x, "permute") else np.moveaxis(x, -1, 1)  # torch, numpy
    z = vae.encode(x, range="[0,1]", max_memory=max_memory or latup.default_max_memory(), tile=tile,
                   threads=threads or None, progress=_progress())
    return ({"samples": z},)


class LatupLuaUpscale:
    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "samples": ("LATENT",),
            "lua_name": _picker("upscale_models", "lua_flux.pth"),
            "scale": ("INT", {"default": 2, "min": 2, "max": 4, "step": 2}),
            "threads": _THREADS,
        }}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "upscale"
    CATEGORY = "latent/latup"

    def upscale(self, samples, lua_name, scale=2, threads=0):
        lua = _model("lua", _resolve(lua_name, "upscale_models"))
        out = dict(samples)
        out["samples"] = lua.upscale(samples["samples"], scale, threads=threads or None, progress=_progress())
        return (out,)


class LatupVaeDecode:
    """A VAE file from ComfyUI's models/vae, loaded by latup (any naming, standalone or a single-file
    checkpoint's first_stage_model)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": dict({"samples": ("LATENT",), "vae_name": _picker("vae", "ae.safetensors")},
                                 **_VAE_OPTIONS)}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "decode"
    CATEGORY = "latent/latup"

    def decode(self, samples, vae_name, max_memory="", tile=0, threads=0):
        return _decode(_model("decoder", _resolve(vae_name, "vae")), samples, max_memory, tile, threads)


class LatupVaeDecodeVae:
    """The VAE a checkpoint loader gives (a VAE socket, as ComfyUI's VAE Decode takes)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": dict({"samples": ("LATENT",), "vae": ("VAE",)}, **_VAE_OPTIONS)}

    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "decode"
    CATEGORY = "latent/latup"

    def decode(self, samples, vae, max_memory="", tile=0, threads=0):
        return _decode(_vae_of(vae), samples, max_memory, tile, threads)


class LatupVaeEncode:
    """An IMAGE encoded by the encoder of a VAE file from ComfyUI's models/vae (any naming, standalone
    or a single-file checkpoint's first_stage_model)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": dict({"pixels": ("IMAGE",), "vae_name": _picker("vae", "ae.safetensors")},
                                 **_VAE_OPTIONS)}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "encode"
    CATEGORY = "latent/latup"

    def encode(self, pixels, vae_name, max_memory="", tile=0, threads=0):
        return _encode(_model("encoder", _resolve(vae_name, "vae")), pixels, max_memory, tile, threads)


class LatupVaeEncodeVae:
    """An IMAGE encoded by the encoder of the VAE a checkpoint loader gives (as ComfyUI's VAE Encode)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": dict({"pixels": ("IMAGE",), "vae": ("VAE",)}, **_VAE_OPTIONS)}

    RETURN_TYPES = ("LATENT",)
    FUNCTION = "encode"
    CATEGORY = "latent/latup"

    def encode(self, pixels, vae, max_memory="", tile=0, threads=0):
        return _encode(_vae_of(vae, "encoder"), pixels, max_memory, tile, threads)


NODE_CLASS_MAPPINGS = {"LatupLuaUpscale": LatupLuaUpscale, "LatupVaeDecodeVae": LatupVaeDecodeVae,
                       "LatupVaeDecode": LatupVaeDecode, "LatupVaeEncodeVae": LatupVaeEncodeVae,
                       "LatupVaeEncode": LatupVaeEncode}
NODE_DISPLAY_NAME_MAPPINGS = {"LatupLuaUpscale": "LUA Upscale (latup)", "LatupVaeDecodeVae": "VAE Decode (latup)",
                              "LatupVaeDecode": "VAE Decode (latup, VAE file)",
                              "LatupVaeEncodeVae": "VAE Encode (latup)",
                              "LatupVaeEncode": "VAE Encode (latup, VAE file)"}
