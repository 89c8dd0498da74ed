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

Arguments are checked here, before anything reaches the library (docs/python.md):
- Paths (str, bytes or os.PathLike) and keys (str or bytes) holding a NUL character raise
  ValueError: C would read them only up to the NUL, i.e. another file or tensor.
- Integers (scale, threads, tile, overlap, max_memory, shape dimensions) take int or a numpy
  integer; bool, float (2.0 too) and anything else raise TypeError, and a value outside the
  argument's range raises ValueError naming the argument and the range (the CLI's ranges:
  scale 2..8, threads 1..4096, tile 4..8192, overlap 1..8191, each with 0 or None for its
  default; max_memory 0..2**60 bytes, 0 no limit, None the default). Nothing is wrapped or
  truncated on the way to C.
- Arrays of 1 to 4 dimensions, of a float or integer dtype (complex, bool, object, str: TypeError;
  another rank: ValueError). Anything but an aligned, C-contiguous, native-order float32 array is
  copied into one first (values converted to float32).
- Models (Lua, Vae) may be shared by threads: calls on one model run concurrently, each on its own
  thread count. close() waits for the calls in flight on that model to finish, then frees it;
  a call made after close() began raises ValueError.
"""
import contextlib
import ctypes
import ctypes.util
import operator
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


# ---- arguments: checked here, before ctypes (which would wrap an int, cut a string at a NUL and
# pass any pointer it is given) -------------------------------------------------------------------

INT_MAX = (1 << 31) - 1
INT64_MAX = (1 << 63) - 1
# The CLI's ranges for the same options (src/cli/options.c), so a value means the same in both.
SCALE_RANGE = (2, 8)          # a scale the model lacks is the library's LatupError (E_USAGE)
THREADS_RANGE = (1, 4096)     # 0 or None: the default (default_threads())
TILE_RANGE = (4, 8192)        # 0 or None: automatic (exact unless over max_memory)
OVERLAP_RANGE = (1, 8191)     # 0 or None: tile / 4; under the tile
MAX_MEMORY_MAX = 1 << 60      # bytes; 0: no limit, None: default_max_memory()


def _int(value, name, lo, hi):
    """value as a Python int in lo..hi: int or numpy integer (operator.index); bool and float are
    refused (TypeError) rather than converted, a value out of range (ValueError) rather than wrapped."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError("%s: an integer, got a bool (%r)" % (name, value))
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError("%s: an integer (int or numpy integer), got %s %r" % (name, type(value).__name__, value)) \
            from None
    if not lo <= v <= hi:
        raise ValueError("%s: %d is out of range %d..%d" % (name, v, lo, hi))
    return v


def _opt_int(value, name, rng, default_text):
    """None or 0: 0 (the library's default); else an int in rng."""
    if value is None:
        return 0
    if isinstance(value, (bool, np.bool_)):
        raise TypeError("%s: an integer, got a bool (%r)" % (name, value))
    try:
        if operator.index(value) == 0:
            return 0
    except TypeError:
        pass  # _int names the type
    lo, hi = rng
    try:
        return _int(value, name, lo, hi)
    except ValueError:
        raise ValueError("%s: %d is out of range %d..%d (0 or None: %s)" % (name, operator.index(value), lo, hi,
                                                                           default_text)) from None


def _scale(scale):
    return _int(scale, "scale", *SCALE_RANGE)


def _threads(threads, fallback=None):
    """The thread count of a call: threads, else (None or 0) fallback (the model's), else the default."""
    n = _opt_int(threads, "threads", THREADS_RANGE, "the default")
    if not n and fallback is not None:
        n = _opt_int(fallback, "threads", THREADS_RANGE, "the default")
    return n


def _tile(tile, overlap):
    t = _opt_int(tile, "tile", TILE_RANGE, "automatic")
    o = _opt_int(overlap, "overlap", OVERLAP_RANGE, "tile / 4")
    if t and o >= t:
        raise ValueError("overlap: %d must be smaller than the tile (%d)" % (o, t))
    return t, o


def _path(p, name="path"):
    """A path for C: str, bytes or os.PathLike, as the OS spells it (os.fsencode); a NUL refused."""
    try:
        p = os.fspath(p)
    except TypeError:
        raise TypeError("%s: a str, bytes or os.PathLike, got %s" % (name, type(p).__name__)) from None
    b = os.fsencode(p)
    if b"\0" in b:
        raise ValueError("%s: %r holds a NUL character (C would read only what comes before it)" % (name, p))
    return b


def _key(key, name="key"):
    """A tensor name for C: None (the default tensor), str (UTF-8, as safetensors names are) or bytes."""
    if key is None:
        return None
    if isinstance(key, str):
        try:
            b = key.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError("%s: %r is not valid UTF-8 text (%s)" % (name, key, e.reason)) from None
    elif isinstance(key, bytes):
        b = key
    else:
        raise TypeError("%s: a str or bytes, got %s" % (name, type(key).__name__))
    if b"\0" in b:
        raise ValueError("%s: %r holds a NUL character (C would read only what comes before it)" % (name, key))
    return b


_SIZE_SHIFT = {"K": 10, "M": 20, "G": 30, "T": 40}


def _parse_size(s):
    """4G, 4GB, 4GiB, 512m, 1.5G, 1000000 -> bytes, as the CLI's --max-memory reads them: powers of 1024,
    at most 9 fraction digits, rounded down to a whole byte, no fraction of a byte, no sign, space,
    exponent, nan or inf (spaces around it are dropped); 0 to 2**60. An int (or numpy integer) is taken as bytes."""
    if not isinstance(s, str):
        return _int(s, "max_memory", 0, MAX_MEMORY_MAX)
    t = s.strip()
    i = 0
    while i < len(t) and t[i] in "0123456789":
        i += 1
    whole, frac, frac_digits = t[:i], "", ""
    if i < len(t) and t[i] == ".":
        j = i + 1
        while j < len(t) and t[j] in "0123456789":
            j += 1
        frac_digits = t[i + 1:j]
        frac = frac_digits
        i = j
        if not frac_digits or len(frac_digits) > 9:
            whole = ""
    rest = t[i:]
    shift = 0
    if rest[:1].upper() in _SIZE_SHIFT and rest[:1]:
        shift = _SIZE_SHIFT[rest[0].upper()]
        rest = rest[1:]
        if rest[:1] == "i":
            rest = rest[1:]
    if rest[:1] in ("B", "b"):
        rest = rest[1:]
    if not whole or rest or (not shift and frac and int(frac)):
        raise ValueError("max_memory: a size like 4G, 512M, 1.5G or 1000000 (bytes), got %r" % (s,))
    v = (int(whole) << shift) + (int(frac) << shift) // 10 ** len(frac) if frac else int(whole) << shift
    if v > MAX_MEMORY_MAX:
        raise ValueError("max_memory: %r is out of range 0..%d bytes (1 EiB)" % (s, MAX_MEMORY_MAX))
    return v


def _max_memory(value):
    """None: default_max_memory(); 0: no limit; else bytes (int, or a string as _parse_size reads)."""
    if value is None:
        return _default_max_memory()
    return _parse_size(value)


_device_check = _fn("latup_device_check", ctypes.c_int, ctypes.c_int)
_DEVICES = {"cpu": DEVICE_CPU, "cuda": DEVICE_CUDA}


def _device(name):
    """"cpu" or "cuda", checked now (LatupError E_DEVICE when this library cannot use it)."""
    if not isinstance(name, str) or name not in _DEVICES:
        raise ValueError("device: 'cpu' or 'cuda', got %r" % (name,))
    d = _DEVICES[name]
    _check(_device_check(d))
    return d


def _device_code(d):
    """A model's .device at call time: a code _device gave (or a name, which is checked again)."""
    if isinstance(d, str):
        return _device(d)
    if isinstance(d, (bool, np.bool_)) or d not in _DEVICES.values():
        raise ValueError("device: 'cpu' or 'cuda' (codes %s), got %r" % (sorted(_DEVICES.values()), d))
    return int(d)


# ---- arrays ------------------------------------------------------------------------------------------


class _Owned:
    """A tensor the library allocated; numpy views keep it alive, the last one frees it."""

    def __init__(self, t):
        self._t = t
        shape = tuple(t.shape[i] for i in range(t.ndim))
        self.__array_interface__ = {"data": (ctypes.cast(t.data, ctypes.c_void_p).value or 0, False),
                                    "shape": shape, "typestr": np.dtype(np.float32).str, "version": 3}

    def __del__(self):
        _tensor_free(ctypes.byref(self._t))


def _to_numpy(t):
    return np.asarray(_Owned(t))


def _as_input(x, name="x"):
    """x as the library reads it: an aligned, C-contiguous, native-order float32 array of 1 to
    MAX_DIMS dimensions. The array itself when it already is one (no copy); else a converted copy
    (misaligned, strided, Fortran-order or byte-swapped arrays, other float and integer dtypes).
    Complex, bool, object and text arrays: TypeError; another rank: ValueError."""
    a = np.asarray(x)  # the array itself for an ndarray (a subclass: its plain data)
    if a.dtype.kind not in "fiu":
        raise TypeError("%s: an array of floats or integers, got dtype %s" % (name, a.dtype))
    if not 1 <= a.ndim <= MAX_DIMS:
        raise ValueError("%s: an array of %d dimensions %s: latup takes 1 to %d" % (name, a.ndim, a.shape, MAX_DIMS))
    a = np.require(a, np.float32, ["C", "A"])  # converts, and copies what is strided or misaligned
    if a.ctypes.data % ctypes.alignment(ctypes.c_float) or a.dtype != np.float32 or not a.flags.c_contiguous:
        a = np.array(a, np.float32, order="C", copy=True)  # numpy's flags disagreeing with the pointer
    return a


def _tensor_of(x):
    t = _Tensor()
    t.data = x.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
    t.ndim = x.ndim
    for i, n in enumerate(x.shape):
        t.shape[i] = n
    return t


def _shape_of(shape, name="shape"):
    """A shape for a plan: 1 to MAX_DIMS integer dimensions, each 0..2**63-1 (the library then checks
    the shape against the model)."""
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__"):
        raise TypeError("%s: a sequence of integers, got %s" % (name, type(shape).__name__))
    dims = tuple(shape)
    if not 1 <= len(dims) <= MAX_DIMS:
        raise ValueError("%s: %d dimensions %r: latup takes 1 to %d" % (name, len(dims), dims, MAX_DIMS))
    return tuple(_int(n, "%s[%d]" % (name, i), 0, INT64_MAX) for i, n in enumerate(dims))


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


def _call(lua, vae, fields, x, threads, plan_only=False):
    """latup_prepare, then (unless plan_only) latup_execute, on x (an array from _as_input, or a shape
    from _shape_of): the plan as a dict, or the output. lua and vae (either may be None) are held in
    use from the prepare to the call's free, so a close() on another thread waits for this call.

    The thread count is set on the calling thread only (an OpenMP setting of that thread; OpenBLAS
    stays at one thread): calls on other threads keep theirs and run at the same time."""
    if plan_only:
        xt = _Tensor()
        xt.ndim = len(x)
        for i, n in enumerate(x):
            xt.shape[i] = n
    else:
        xt = _tensor_of(x)
    with contextlib.ExitStack() as held:
        o = _CallOpts(**fields)
        if lua is not None:
            o.lua = held.enter_context(lua._use())
        if vae is not None:
            o.vae = held.enter_context(vae._use())
        _set_threads(threads or _default_threads())
        c = _P()
        _check(_prepare(ctypes.byref(o), ctypes.byref(xt), ctypes.byref(c)))
        try:
            if plan_only:
                d = _plan_dict(_call_plan(c).contents)
                d["input_shape"] = tuple(x)
                return d
            out = _Tensor()
            _check(_execute(c, ctypes.byref(xt), None, ctypes.byref(out)))
            return _to_numpy(out)
        finally:
            _call_free(c)


def _models(lua, vae):
    if not isinstance(lua, Lua):
        raise TypeError("lua: a latup.Lua, got %s" % type(lua).__name__)
    if not isinstance(vae, Vae):
        raise TypeError("vae: a latup.Vae, got %s" % type(vae).__name__)


def upscale_decode(lua, vae, z, scale=2, threads=None):
    """latup run: z upscaled by lua, then decoded by vae, as one call planned against vae.max_memory
    (the whole process: both models, every tensor, the larger stage's scratch). Arguments as
    Lua.upscale and Vae.decode (docs/python.md); threads None or 0: vae.threads."""
    _models(lua, vae)
    fields = dict(vae._fields(), scale=_scale(scale))
    return _call(lua, vae, fields, _as_input(z, "z"), _threads(threads, vae.threads))


def plan_upscale_decode(lua, vae, shape, scale=2, threads=None):
    """What upscale_decode would do with an input of this shape, nothing computed: a dict of the
    stages, the decode's tiles and the memory of the whole call (bytes)."""
    _models(lua, vae)
    fields = dict(vae._fields(), scale=_scale(scale))
    return _call(lua, vae, fields, _shape_of(shape), _threads(threads, vae.threads), plan_only=True)


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
    [0,1]), safetensors (key, or ComfyUI's "latent_tensor", or the only tensor). float32 ndarray.
    path: str, bytes or os.PathLike; key: None, str or bytes; a NUL in either is a ValueError."""
    p, k = _path(path), _key(key)
    t = _Tensor()
    _check(_tensor_read(p, k, ctypes.byref(t), None))
    return _to_numpy(t)


class _Model:
    """A loaded model, freed by close(), at the end of a with block, or when collected.

    Threads may share one: its calls run concurrently (the library only reads a model). close()
    marks the model closed, so calls that start afterwards raise ValueError, then waits for the
    calls already running on it to return, and frees it: never under a running call. Closing twice
    is harmless. Collection (__del__) frees it too: no call can be running then, as a call holds
    a reference to its model. close() from a thread that is itself inside a call on the model (a
    signal handler's, say) raises RuntimeError instead of waiting for itself."""
    _handle = None   # the library's pointer; None once closed (or when the load failed)
    _free = None
    _cond = None     # guards _handle, _users, _closing
    _users = 0       # calls in flight
    _closing = False

    def _open(self, handle):
        self._cond = threading.Condition()
        self._user_threads = {}  # thread id -> its calls in flight
        self._handle = handle

    @property
    def closed(self):
        """True once close() began (calls are refused from then on)."""
        return self._handle is None or self._closing

    @contextlib.contextmanager
    def _use(self):
        """The model's pointer, held for the length of a call: close() waits until it is released."""
        cond = self._cond
        if cond is None:
            raise ValueError("%s: the model is not loaded" % type(self).__name__)
        me = threading.get_ident()
        with cond:
            if self._handle is None or self._closing:
                raise ValueError("%s: the model was closed" % type(self).__name__)
            self._users += 1
            self._user_threads[me] = self._user_threads.get(me, 0) + 1
            handle = self._handle
        try:
            yield handle
        finally:
            with cond:
                self._users -= 1
                self._user_threads[me] -= 1
                if not self._user_threads[me]:
                    del self._user_threads[me]
                if not self._users:
                    cond.notify_all()

    def close(self):
        """Free the model, after any call running on it (on another thread) has returned."""
        cond = self._cond
        if cond is None:
            return
        with cond:
            if threading.get_ident() in self._user_threads:  # e.g. a signal handler interrupting a call
                raise RuntimeError("%s.close(): this thread is inside a call on the model, which close() would "
                                   "wait for forever; close it after the call returns" % type(self).__name__)
            self._closing = True
            while self._users:
                cond.wait()
            handle, self._handle = self._handle, None
        if handle:
            type(self)._free(handle)

    def __del__(self):
        # Nothing else refers to the model, so no call is running on it and no lock is needed
        # (taking one here could deadlock a collection triggered while it is held).
        handle, self._handle = self._handle, None
        if handle and not self._users and type(self)._free is not None:
            type(self)._free(handle)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Lua(_Model):
    """A LUA (or SwinIR) model: safetensors or PyTorch .pth, optionally gzip-compressed.

    path: str, bytes or os.PathLike. threads: None or 0 (default_threads()), or 1..4096.
    device: "cpu" or "cuda". Argument rules and close() under threads: the package docstring."""
    _free = staticmethod(_lua_free)

    def __init__(self, path, threads=None, device="cpu"):
        p = _path(path)
        _threads(threads)
        self.device = _device(device)
        m = _P()
        _check(_lua_load(p, ctypes.byref(m)))
        self._open(m)
        self.path = os.fsdecode(os.fspath(path))
        self.threads = threads
        c = _lua_config(m).contents
        self.in_channels, self.out_channels = c.in_chans, c.out_chans
        self.scales = tuple(c.scales[i] for i in range(c.n_scales))
        self.embed_dim, self.window_size, self.n_params = c.embed_dim, c.window_size, c.n_params

    def _fields(self, scale):
        return {"scale": _scale(scale), "device": _device_code(self.device)}

    def upscale(self, x, scale=2, threads=None):
        """x: [C,H,W] or [B,C,H,W] VAE-space latent -> float32 [.., C, scale*H, scale*W].
        scale: an int 2..8 the model has (one it lacks: LatupError E_USAGE). threads: None or 0
        (the model's threads), or 1..4096."""
        fields = self._fields(scale)
        return _call(self, None, fields, _as_input(x), _threads(threads, self.threads))

    def plan(self, shape, scale=2, threads=None):
        """What upscale would do with an input of this shape, nothing computed: a dict of its arena
        and the memory of the whole call (bytes)."""
        fields = self._fields(scale)
        return _call(self, None, fields, _shape_of(shape), _threads(threads, self.threads), plan_only=True)


class Vae(_Model):
    """The AutoencoderKL decoder of SD 1.x/2.x, SDXL, SD3 or FLUX.1, from any checkpoint holding one.

    max_memory: bytes (int) or "4G"-style text, up to 2**60; a decode over it is tiled (an
    approximation), and one no tile fits raises LatupError (status E_NOMEM) naming the smallest
    budget that works. None: 3/4 of physical memory or of the cgroup limit; 0: no limit.
    tile/overlap: force tiling (latent pixels): tile None or 0 (automatic) or 4..8192, overlap
    None or 0 (tile / 4) or 1..8191, under the tile. threads: None or 0 (default_threads()) or
    1..4096. The attributes are checked again at each call, so a value assigned later is too."""

    _free = staticmethod(_vae_free)

    def __init__(self, path, threads=None, max_memory=None, tile=None, overlap=None, device="cpu"):
        p = _path(path)
        _threads(threads)
        _tile(tile, overlap)
        self.max_memory = _max_memory(max_memory)
        self.device = _device(device)
        v = _P()
        _check(_vae_load(p, ctypes.byref(v)))
        self._open(v)
        self.path = os.fsdecode(os.fspath(path))
        self.threads, self.tile, self.overlap = threads, tile, overlap
        c = _vae_config(v).contents
        self.latent_channels, self.n_params = c.z_channels, c.n_params
        self.upsampling = 1 << (c.n_levels - 1)

    def decode(self, z, threads=None):
        """z: [C,h,w] or [B,C,h,w] decoder-ready latent -> float32 [.., 3, f*h, f*w] (f = 8 for the
        released VAEs), the raw decoder output (about [-1, 1])."""
        return _call(None, self, self._fields(), _as_input(z, "z"), _threads(threads, self.threads))

    def plan(self, shape, threads=None):
        """What decode would do with an input of this shape, nothing computed: a dict of the tiles
        (exact or tiled, and why) and the memory of the whole call against max_memory (bytes)."""
        return _call(None, self, self._fields(), _shape_of(shape), _threads(threads, self.threads), plan_only=True)

    def _fields(self):
        tile, overlap = _tile(self.tile, self.overlap)
        return {"device": _device_code(self.device), "max_memory": _parse_size(self.max_memory), "tile": tile,
                "overlap": overlap}


def to_unit(img):
    """Decoder output [..,3,H,W] -> [..,H,W,3] float32 in [0, 1]: diffusers' (x / 2 + 0.5).clamp(0, 1)."""
    img = np.asarray(img, dtype=np.float32)
    return np.clip(np.moveaxis(img * np.float32(0.5) + np.float32(0.5), -3, -1), 0.0, 1.0)


def to_uint8(img):
    """Decoder output -> [..,H,W,3] uint8, rounded half to even as diffusers' numpy_to_pil."""
    return np.round(to_unit(img) * np.float32(255)).astype(np.uint8)
