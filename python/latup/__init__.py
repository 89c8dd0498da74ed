"""latup — Python bindings for liblatup (ctypes, no compiled extension).

LUA (the Latent Upscaler Adapter) and the AutoencoderKL VAE decoder on the CPU, numpy in and
numpy out:

    import latup
    lua = latup.Lua("lua_flux.pth")
    z2 = lua.upscale(z, 2)                 # float32 [C,H,W] or [B,C,H,W] -> [.., 2H, 2W]
    vae = latup.Vae("ae.safetensors", max_memory="8G")
    img = vae.decode(z2)                   # raw decoder output [B,3,8h,8w], about [-1, 1]
    rgb = latup.to_uint8(img)              # [B,H,W,3] uint8, diffusers' mapping

A float32 C-contiguous input is handed to the library as it is (no copy); outputs are numpy
views of the buffers the library allocated, freed when the last view goes. A failure raises
LatupError carrying the library's one-line message and status. The library is found through
LATUP_LIBRARY (a path), else next to this package in a source tree (build/liblatup.so), else on
the system (liblatup.so.0).
"""
import ctypes
import ctypes.util
import os
import threading

import numpy as np

__all__ = ["Lua", "Vae", "LatupError", "upscale_decode", "plan_upscale_decode", "read", "to_uint8", "to_unit", "version", "default_threads",
           "default_max_memory"]

_MAJOR = 0  # the library major version these bindings mirror (include/latup.h)

# ---- the library ---------------------------------------------------------------------------------


def _find_library():
    path = os.environ.get("LATUP_LIBRARY")
    if path:
        return path
    here = os.path.dirname(os.path.abspath(__file__))
    tree = os.path.join(here, "..", "..", "build", "liblatup.so")
    if os.path.exists(tree):
        return tree
    return ctypes.util.find_library("latup") or "liblatup.so.%d" % _MAJOR


_lib = ctypes.CDLL(_find_library())

# ---- mirrors of include/latup.h (tests/test_latup.py checks every offset against a C compiler) -----

MAX_DIMS = 4
MAX_LAYERS = 16
MAX_SCALES = 4
VAE_MAX_LEVELS = 6

OK, E_USAGE, E_INPUT, E_NOMEM, E_IO, E_INTERNAL, E_DEVICE = range(7)
DEVICE_CPU, DEVICE_CUDA = 0, 1


class _Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.POINTER(ctypes.c_float)), ("ndim", ctypes.c_int),
                ("shape", ctypes.c_int64 * MAX_DIMS)]


_DumpFn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(_Tensor), ctypes.c_int)


class _RunOpts(ctypes.Structure):
    _fields_ = [("dump", _DumpFn), ("dump_user", ctypes.c_void_p), ("verbose", ctypes.c_int),
                ("progress", ctypes.c_int), ("device", ctypes.c_int), ("conv_band_rows", ctypes.c_int)]


class _DecodeOpts(ctypes.Structure):
    _fields_ = [("dump", _DumpFn), ("dump_user", ctypes.c_void_p), ("verbose", ctypes.c_int),
                ("progress", ctypes.c_int), ("device", ctypes.c_int), ("conv_band_rows", ctypes.c_int),
                ("tile", ctypes.c_int), ("overlap", ctypes.c_int), ("max_memory", ctypes.c_size_t)]


_StageFn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_double)


class _CallOpts(ctypes.Structure):
    _fields_ = [("lua", ctypes.c_void_p), ("scale", ctypes.c_int), ("vae", ctypes.c_void_p), ("device", ctypes.c_int),
                ("max_memory", ctypes.c_size_t), ("held", ctypes.c_size_t), ("tile", ctypes.c_int),
                ("overlap", ctypes.c_int), ("conv_band_rows", ctypes.c_int), ("dump", _DumpFn),
                ("dump_user", ctypes.c_void_p), ("stage", _StageFn), ("stage_user", ctypes.c_void_p),
                ("verbose", ctypes.c_int), ("progress", ctypes.c_int)]


class _CallMemory(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("process", "weights", "held", "input", "upscaled", "image",
                                                "upscale_arena", "decode_arena", "peak")]


PLAN_MAX_TAKES = 32


class _PlanTake(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * 48), ("bytes", ctypes.c_size_t), ("count", ctypes.c_long)]


class _MemPlan(ctypes.Structure):
    _fields_ = [("arena", ctypes.c_size_t), ("weights", ctypes.c_size_t), ("output", ctypes.c_size_t),
                ("n_takes", ctypes.c_int), ("takes", _PlanTake * PLAN_MAX_TAKES)]


class _LuaPlan(ctypes.Structure):
    _fields_ = [("H", ctypes.c_int), ("W", ctypes.c_int), ("Hp", ctypes.c_int), ("Wp", ctypes.c_int),
                ("scale", ctypes.c_int), ("mem", _MemPlan)]


class _VaePlan(ctypes.Structure):
    _fields_ = [("h", ctypes.c_int), ("w", ctypes.c_int), ("mem", _MemPlan)]


class _DecodePlan(ctypes.Structure):
    _fields_ = [("tiled", ctypes.c_int), ("tile", ctypes.c_int), ("overlap", ctypes.c_int), ("plan", _VaePlan),
                ("peak", ctypes.c_size_t), ("reason", ctypes.c_char * 160)]


class _Plan(ctypes.Structure):
    _fields_ = [("device", ctypes.c_int), ("stages", ctypes.c_int), ("ndim", ctypes.c_int), ("batch", ctypes.c_int64),
                ("channels", ctypes.c_int), ("h", ctypes.c_int), ("w", ctypes.c_int), ("scale", ctypes.c_int),
                ("dec_h", ctypes.c_int), ("dec_w", ctypes.c_int), ("out_ndim", ctypes.c_int),
                ("out_shape", ctypes.c_int64 * MAX_DIMS), ("upscale", _LuaPlan), ("decode", _DecodePlan),
                ("mem", _CallMemory), ("budget", ctypes.c_size_t)]


class _LuaConfig(ctypes.Structure):
    _fields_ = [("tail", ctypes.c_int), ("in_chans", ctypes.c_int), ("out_chans", ctypes.c_int),
                ("embed_dim", ctypes.c_int), ("num_layers", ctypes.c_int),
                ("depths", ctypes.c_int * MAX_LAYERS), ("num_heads", ctypes.c_int * MAX_LAYERS),
                ("window_size", ctypes.c_int), ("mlp_hidden", ctypes.c_int), ("head_feat", ctypes.c_int),
                ("n_scales", ctypes.c_int), ("scales", ctypes.c_int * MAX_SCALES), ("ln_eps", ctypes.c_float),
                ("has_mean", ctypes.c_int), ("mean", ctypes.c_float * 3), ("n_params", ctypes.c_int64)]


class _VaeConfig(ctypes.Structure):
    _fields_ = [("z_channels", ctypes.c_int), ("has_post_quant_conv", ctypes.c_int), ("n_levels", ctypes.c_int),
                ("channels", ctypes.c_int * VAE_MAX_LEVELS), ("blocks_per_level", ctypes.c_int),
                ("out_channels", ctypes.c_int), ("groups", ctypes.c_int), ("eps", ctypes.c_float),
                ("naming", ctypes.c_int), ("prefix", ctypes.c_char * 32), ("n_params", ctypes.c_int64)]


def _fn(name, restype, *argtypes):
    f = getattr(_lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


_P = ctypes.c_void_p
_last_error = _fn("latup_last_error", ctypes.c_char_p)
_version = _fn("latup_version", ctypes.c_char_p)
_set_threads = _fn("latup_set_threads", None, ctypes.c_int)
_default_threads = _fn("latup_default_threads", ctypes.c_int)
_default_max_memory = _fn("latup_default_max_memory", ctypes.c_size_t)
_tensor_free = _fn("latup_tensor_free", None, ctypes.POINTER(_Tensor))
_tensor_read = _fn("latup_tensor_read", ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(_Tensor),
                   ctypes.POINTER(ctypes.c_int))
_lua_load = _fn("latup_lua_load", ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(_P))
_lua_free = _fn("latup_lua_free", None, _P)
_lua_config = _fn("latup_lua_get_config", ctypes.POINTER(_LuaConfig), _P)
_prepare = _fn("latup_prepare", ctypes.c_int, ctypes.POINTER(_CallOpts), ctypes.POINTER(_Tensor), ctypes.POINTER(_P))
_call_plan = _fn("latup_call_plan", ctypes.POINTER(_Plan), _P)
_execute = _fn("latup_execute", ctypes.c_int, _P, ctypes.POINTER(_Tensor), ctypes.POINTER(_Tensor),
               ctypes.POINTER(_Tensor))
_call_free = _fn("latup_call_free", None, _P)
_vae_load = _fn("latup_vae_load", ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(_P))
_vae_free = _fn("latup_vae_free", None, _P)
_vae_config = _fn("latup_vae_get_config", ctypes.POINTER(_VaeConfig), _P)

_v = _version().decode()
if int(_v.split(".")[0]) != _MAJOR:
    raise ImportError("latup: these bindings mirror liblatup %d.x, %s is %s" % (_MAJOR, _lib._name, _v))


class LatupError(Exception):
    """A library call failed: .status is the latup_status (also the CLI's exit code), the message is
    the library's one line (naming the file, tensor, expected and found)."""

    NAMES = {E_USAGE: "usage", E_INPUT: "bad input", E_NOMEM: "out of memory", E_IO: "i/o",
             E_INTERNAL: "internal", E_DEVICE: "device"}

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status

    @property
    def kind(self):
        return self.NAMES.get(self.status, "status %d" % self.status)


def _check(status):
    if status != OK:
        raise LatupError(status, _last_error().decode("utf-8", "replace"))


# ---- arrays ------------------------------------------------------------------------------------------


class _Owned:
    """A tensor the library allocated; numpy views keep it alive, the last one frees it."""

    def __init__(self, t):
        self._t = t
        shape = tuple(t.shape[i] for i in range(t.ndim))
        self.__array_interface__ = {"data": (ctypes.cast(t.data, ctypes.c_void_p).value or 0, False),
                                    "shape": shape, "typestr": "<f4", "version": 3}

    def __del__(self):
        _tensor_free(ctypes.byref(self._t))


def _to_numpy(t):
    return np.asarray(_Owned(t))


def _as_input(x):
    """float32, C order: the array itself when it already is (no copy)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim < 1 or x.ndim > MAX_DIMS:
        raise LatupError(E_INPUT, "an array of %d dimensions: latup takes 1 to %d" % (x.ndim, MAX_DIMS))
    return x


def _tensor_of(x):
    t = _Tensor()
    t.data = x.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
    t.ndim = x.ndim
    for i, n in enumerate(x.shape):
        t.shape[i] = n
    return t


def _path(p):
    return os.fsencode(p)


def _parse_size(s):
    """4G, 512M, 1.5G, 1000000 -> bytes (as the CLI's --max-memory)."""
    if isinstance(s, (int, np.integer)):
        return int(s)
    s = str(s).strip()
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    for suffix in ("iB", "B", "i"):
        if s.endswith(suffix) and len(s) > len(suffix) and s[-len(suffix) - 1].upper() in mult:
            s = s[:-len(suffix)]
            break
    m = 1
    if s and s[-1].upper() in mult:
        m, s = mult[s[-1].upper()], s[:-1]
    if not s or not all(c.isdigit() or c == "." for c in s) or s.count(".") > 1:
        raise ValueError("a size like 4G, 512M or 1000000, got %r" % s)
    return int(float(s) * m) if "." in s else int(s) * m


_device_check = _fn("latup_device_check", ctypes.c_int, ctypes.c_int)


def _device(name):
    """"cpu" or "cuda", checked now (LatupError E_DEVICE when this library cannot use it)."""
    d = {"cpu": DEVICE_CPU, "cuda": DEVICE_CUDA}.get(name)
    if d is None:
        raise ValueError("device: 'cpu' or 'cuda', got %r" % (name,))
    _check(_device_check(d))
    return d


_threads_lock = threading.Lock()


def _call_with_threads(threads, fn, *args):
    # the thread count is per calling thread in OpenMP, process-wide in OpenBLAS: one call at a time
    with _threads_lock:
        _set_threads(int(threads) if threads else _default_threads())
        return fn(*args)


# ---- prepared calls: the library checks and plans each call once, then runs that plan ---------------


def _plan_dict(p):
    m = p.mem
    d = {"batch": p.batch, "input_shape": None, "output_shape": tuple(p.out_shape[i] for i in range(p.out_ndim)),
         "memory": {n: getattr(m, n) for n, _ in _CallMemory._fields_}, "budget": p.budget}
    if p.stages & 1:
        d["upscale"] = {"scale": p.scale, "arena": p.upscale.mem.arena}
    if p.stages & 2:
        dp = p.decode
        d["decode"] = {"h": p.dec_h, "w": p.dec_w, "tiled": bool(dp.tiled), "tile": dp.tile, "overlap": dp.overlap,
                       "reason": dp.reason.decode("utf-8", "replace"), "arena": dp.plan.mem.arena, "peak": dp.peak}
    return d


def _call(opts, x, threads, plan_only=False):
    """latup_prepare, then (unless plan_only) latup_execute, on x: the plan as a dict, or the output."""
    xt = _tensor_of(x) if not plan_only else _Tensor()
    if plan_only:
        xt.ndim = len(x)
        for i, n in enumerate(x):
            xt.shape[i] = int(n)

    def go():
        c = _P()
        _check(_prepare(ctypes.byref(opts), ctypes.byref(xt), ctypes.byref(c)))
        try:
            if plan_only:
                d = _plan_dict(_call_plan(c).contents)
                d["input_shape"] = tuple(int(n) for n in x)
                return d
            out = _Tensor()
            _check(_execute(c, ctypes.byref(xt), None, ctypes.byref(out)))
            return _to_numpy(out)
        finally:
            _call_free(c)
    return _call_with_threads(threads, go)


def _shape_of(shape):
    shape = tuple(int(n) for n in shape)
    if len(shape) < 1 or len(shape) > MAX_DIMS:
        raise LatupError(E_INPUT, "a shape of %d dimensions: latup takes 1 to %d" % (len(shape), MAX_DIMS))
    return shape


def upscale_decode(lua, vae, z, scale=2, threads=None):
    """latup run: z upscaled by lua, then decoded by vae, as one call planned against vae.max_memory
    (the whole process: both models, every tensor, the larger stage's scratch)."""
    z = _as_input(z)
    o = _CallOpts(lua=lua._live(), scale=int(scale), vae=vae._live(), device=vae.device,
                  max_memory=vae.max_memory, tile=int(vae.tile or 0), overlap=int(vae.overlap or 0))
    return _call(o, z, threads or vae.threads)


def plan_upscale_decode(lua, vae, shape, scale=2, threads=None):
    """What upscale_decode would do with an input of this shape, nothing computed: a dict of the
    stages, the decode's tiles and the memory of the whole call (bytes)."""
    o = _CallOpts(lua=lua._live(), scale=int(scale), vae=vae._live(), device=vae.device,
                  max_memory=vae.max_memory, tile=int(vae.tile or 0), overlap=int(vae.overlap or 0))
    return _call(o, _shape_of(shape), threads or vae.threads, plan_only=True)


# ---- the API -------------------------------------------------------------------------------------------


def version():
    """The linked library's version, "0.1.0"."""
    return _version().decode()


def default_threads():
    """OMP_NUM_THREADS when set, else the CPUs this process may use."""
    return _default_threads()


def default_max_memory():
    """3/4 of physical memory or of the cgroup limit, whichever is smaller (bytes)."""
    return _default_max_memory()


def read(path, key=None):
    """A tensor from a file, told apart by content: .npy (float32/16/64, bfloat16), PNG ([3,H,W] in
    [0,1]), safetensors (key, or ComfyUI's "latent_tensor", or the only tensor). float32 ndarray."""
    t = _Tensor()
    _check(_tensor_read(_path(path), key.encode() if key else None, ctypes.byref(t), None))
    return _to_numpy(t)


class _Model:
    """A loaded model: freed by close(), at the end of a with block, or when collected."""
    _handle = None
    _free = None

    def close(self):
        if self._handle:
            type(self)._free(self._handle)
            self._handle = None

    def _live(self):
        if not self._handle:
            raise ValueError("%s: the model was closed" % type(self).__name__)
        return self._handle

    __del__ = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Lua(_Model):
    """A LUA (or SwinIR) model: safetensors or PyTorch .pth, optionally gzip-compressed."""
    _free = staticmethod(_lua_free)

    def __init__(self, path, threads=None, device="cpu"):
        self.device = _device(device)
        m = _P()
        _check(_lua_load(_path(path), ctypes.byref(m)))
        self._handle = m
        self.path = str(path)
        self.threads = threads
        c = _lua_config(m).contents
        self.in_channels, self.out_channels = c.in_chans, c.out_chans
        self.scales = tuple(c.scales[i] for i in range(c.n_scales))
        self.embed_dim, self.window_size, self.n_params = c.embed_dim, c.window_size, c.n_params

    def upscale(self, x, scale=2, threads=None):
        """x: [C,H,W] or [B,C,H,W] VAE-space latent -> float32 [.., C, scale*H, scale*W]."""
        o = _CallOpts(lua=self._live(), scale=int(scale), device=self.device)
        return _call(o, _as_input(x), threads or self.threads)

    def plan(self, shape, scale=2, threads=None):
        """What upscale would do with an input of this shape, nothing computed: a dict of its arena
        and the memory of the whole call (bytes)."""
        o = _CallOpts(lua=self._live(), scale=int(scale), device=self.device)
        return _call(o, _shape_of(shape), threads or self.threads, plan_only=True)



class Vae(_Model):
    """The AutoencoderKL decoder of SD 1.x/2.x, SDXL, SD3 or FLUX.1, from any checkpoint holding one.

    max_memory: bytes or "4G"-style; a decode over it is tiled (an approximation), and one no tile
    fits raises LatupError (status E_NOMEM) naming the smallest budget that works. Default: 3/4 of
    physical memory or of the cgroup limit. tile/overlap: force tiling (latent pixels)."""

    _free = staticmethod(_vae_free)

    def __init__(self, path, threads=None, max_memory=None, tile=None, overlap=None, device="cpu"):
        self.device = _device(device)
        v = _P()
        _check(_vae_load(_path(path), ctypes.byref(v)))
        self._handle = v
        self.path = str(path)
        self.threads, self.tile, self.overlap = threads, tile, overlap
        self.max_memory = _parse_size(max_memory) if max_memory is not None else _default_max_memory()
        c = _vae_config(v).contents
        self.latent_channels, self.n_params = c.z_channels, c.n_params
        self.upsampling = 1 << (c.n_levels - 1)

    def decode(self, z, threads=None):
        """z: [C,h,w] or [B,C,h,w] decoder-ready latent -> float32 [.., 3, f*h, f*w] (f = 8 for the
        released VAEs), the raw decoder output (about [-1, 1])."""
        return _call(self._opts(), _as_input(z), threads or self.threads)

    def plan(self, shape, threads=None):
        """What decode would do with an input of this shape, nothing computed: a dict of the tiles
        (exact or tiled, and why) and the memory of the whole call against max_memory (bytes)."""
        return _call(self._opts(), _shape_of(shape), threads or self.threads, plan_only=True)

    def _opts(self):
        return _CallOpts(vae=self._live(), device=self.device, max_memory=self.max_memory,
                         tile=int(self.tile or 0), overlap=int(self.overlap or 0))



def to_unit(img):
    """Decoder output [..,3,H,W] -> [..,H,W,3] float32 in [0, 1]: diffusers' (x / 2 + 0.5).clamp(0, 1)."""
    img = np.asarray(img, dtype=np.float32)
    return np.clip(np.moveaxis(img * np.float32(0.5) + np.float32(0.5), -3, -1), 0.0, 1.0)


def to_uint8(img):
    """Decoder output -> [..,H,W,3] uint8, rounded half to even as diffusers' numpy_to_pil."""
    return np.round(to_unit(img) * np.float32(255)).astype(np.uint8)
