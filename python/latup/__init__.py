"""latup — Python bindings for liblatup (ctypes, no compiled extension).

LUA (the Latent Upscaler Adapter) and the AutoencoderKL VAE decoder on the CPU, numpy in and
numpy out (torch in, torch out):

    import latup
    z = latup.to_vae_space(latup.flux_unpack(tokens, 128, 128), "flux")  # a FluxPipeline's latent
    lua = latup.Lua("lua_flux.pth")
    z2 = lua.upscale(z, 2)                 # float32 [C,H,W] or [B,C,H,W] -> [.., 2H, 2W]
    vae = latup.Vae("ae.safetensors", max_memory="8G")
    img = vae.decode(z2)                   # raw decoder output [B,3,8h,8w], about [-1, 1]
    latup.write_png("out.png", img[0], range="[-1,1]")
    rgb = latup.to_uint8(img, range="[-1,1]")  # [B,H,W,3] uint8, diffusers' mapping

A float32 C-contiguous input is handed to the library as it is (no copy); outputs are numpy
views of the buffers the library allocated, freed when the last view goes. A torch tensor in
gives a torch tensor out (on the input's device), without importing torch otherwise. A failure
raises a LatupError subclass that is also the built-in exception that fits (FileNotFoundError,
ValueError, MemoryError, ...), carrying the library's one-line message and .status. The library
is looked for in this order: LATUP_LIBRARY (a path; nothing else is tried when it is set), the
source tree's build/liblatup.so, PREFIX/lib/liblatup.so.0 of the prefix this package is
installed in, then the system's loader (liblatup.so.0: LD_LIBRARY_PATH, ldconfig).

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
import errno
import operator
import os
import sys
import threading

import numpy as np

__all__ = ["Lua", "Vae", "upscale_decode", "plan_upscale_decode", "read", "write_png", "to_vae_space",
           "from_vae_space", "flux_unpack", "to_uint8", "to_unit", "version", "default_threads",
           "default_max_memory", "LatupError", "LatupUsageError", "LatupInputError", "LatupMemoryError",
           "LatupIOError", "LatupFileNotFoundError", "LatupPermissionError", "LatupIsADirectoryError",
           "LatupNotADirectoryError", "LatupInternalError", "LatupDeviceError", "LatupCancelledError"]

_MAJOR = 0  # the library major version these bindings mirror (include/latup.h)

# ---- the library ---------------------------------------------------------------------------------


def _library_candidates():
    """Where the library is looked for, in this order: (what, path)."""
    env = os.environ.get("LATUP_LIBRARY")
    if env:  # an explicit choice: a wrong one is an error, never quietly replaced by another library
        return [("LATUP_LIBRARY", env)]
    here = os.path.dirname(os.path.abspath(__file__))
    soname = "liblatup.so.%d" % _MAJOR
    return [("the source tree's build/", os.path.normpath(os.path.join(here, "..", "..", "build", "liblatup.so"))),
            # PREFIX/lib/python3.X/site-packages/latup -> PREFIX/lib: `pip install --user ./python` next to
            # `make install PREFIX=$HOME/.local`, which the loader's own search does not cover
            ("the prefix this package is installed in", os.path.normpath(os.path.join(here, "..", "..", "..", soname))),
            ("the system's library search (LD_LIBRARY_PATH, ldconfig)", soname)]


def _load_library():
    tried = []
    for what, path in _library_candidates():
        if os.sep in path and what != "LATUP_LIBRARY" and not os.path.exists(path):
            tried.append("%s: %s (absent)" % (what, path))
            continue
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            tried.append("%s: %s" % (what, e))
    raise ImportError(
        "latup: cannot load liblatup, the C library these bindings call. Build and install it from the latup "
        "source tree with `make && make install PREFIX=/usr/local` (then `ldconfig`; for a private PREFIX put "
        "PREFIX/lib on LD_LIBRARY_PATH), or set LATUP_LIBRARY to the path of liblatup.so. Looked for, in order: "
        + "; ".join(tried))


_lib = _load_library()

# ---- mirrors of include/latup.h (tests/test_latup.py checks every offset against a C compiler) -----

MAX_DIMS = 4
MAX_LAYERS = 16
MAX_SCALES = 4
VAE_MAX_LEVELS = 6

OK, E_USAGE, E_INPUT, E_NOMEM, E_IO, E_INTERNAL, E_DEVICE, E_CANCELLED = range(8)
DEVICE_CPU, DEVICE_CUDA = 0, 1


class _Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.POINTER(ctypes.c_float)), ("ndim", ctypes.c_int),
                ("shape", ctypes.c_int64 * MAX_DIMS)]


_DumpFn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(_Tensor), ctypes.c_int)
# latup_progress_fn: (user, done, total) -> non-zero to stop the call (LATUP_E_CANCELLED)
_ProgressFn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)
_PROGRESS_FIELDS = [("on_progress", _ProgressFn), ("progress_user", ctypes.c_void_p)]


class _RunOpts(ctypes.Structure):
    _fields_ = [("dump", _DumpFn), ("dump_user", ctypes.c_void_p), ("verbose", ctypes.c_int),
                ("progress", ctypes.c_int), ("device", ctypes.c_int), ("conv_band_rows", ctypes.c_int)] + _PROGRESS_FIELDS


class _DecodeOpts(ctypes.Structure):
    _fields_ = [("dump", _DumpFn), ("dump_user", ctypes.c_void_p), ("verbose", ctypes.c_int),
                ("progress", ctypes.c_int), ("device", ctypes.c_int), ("conv_band_rows", ctypes.c_int),
                ("tile", ctypes.c_int), ("overlap", ctypes.c_int), ("max_memory", ctypes.c_size_t)] + _PROGRESS_FIELDS


_StageFn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_double)


class _CallOpts(ctypes.Structure):
    _fields_ = [("lua", ctypes.c_void_p), ("scale", ctypes.c_int), ("vae", ctypes.c_void_p), ("device", ctypes.c_int),
                ("max_memory", ctypes.c_size_t), ("held", ctypes.c_size_t), ("tile", ctypes.c_int),
                ("overlap", ctypes.c_int), ("conv_band_rows", ctypes.c_int), ("dump", _DumpFn),
                ("dump_user", ctypes.c_void_p), ("stage", _StageFn), ("stage_user", ctypes.c_void_p),
                ("verbose", ctypes.c_int), ("progress", ctypes.c_int)] + _PROGRESS_FIELDS


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
                ("naming", ctypes.c_int), ("prefix", ctypes.c_char * 32), ("n_params", ctypes.c_int64),
                # the encoder (appended in issue 22; read only from a library that has it: ENCODER)
                ("has_decoder", ctypes.c_int), ("encoder", ctypes.c_int), ("has_quant_conv", ctypes.c_int),
                ("enc_n_levels", ctypes.c_int), ("enc_channels", ctypes.c_int * VAE_MAX_LEVELS),
                ("enc_blocks_per_level", ctypes.c_int), ("enc_patch", ctypes.c_int), ("enc_params", ctypes.c_int64)]


VAE_ENCODER_NONE, VAE_ENCODER_LDM, VAE_ENCODER_PATCH = 0, 1, 2
VAE_DECODER_PART, VAE_ENCODER_PART = 1, 2  # latup_vae_load_parts: LATUP_VAE_DECODER, LATUP_VAE_ENCODER


class _EncodeOpts(ctypes.Structure):
    _fields_ = [("dump", _DumpFn), ("dump_user", ctypes.c_void_p), ("verbose", ctypes.c_int),
                ("device", ctypes.c_int), ("conv_band_rows", ctypes.c_int), ("tile", ctypes.c_int),
                ("overlap", ctypes.c_int), ("max_memory", ctypes.c_size_t), ("held", ctypes.c_size_t),
                ("sample", ctypes.c_int), ("seed", ctypes.c_uint64)] + _PROGRESS_FIELDS


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
_status_name = _fn("latup_status_name", ctypes.c_char_p, ctypes.c_int)


class _LatentFamily(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("scaling", ctypes.c_float), ("shift", ctypes.c_float),
                ("channels", ctypes.c_int)]


_latent_family_find = _fn("latup_latent_family_find", ctypes.POINTER(_LatentFamily), ctypes.c_char_p)
_latent_to_vae = _fn("latup_latent_to_vae", None, ctypes.POINTER(_Tensor), ctypes.POINTER(_LatentFamily))
_vae_latent_family = _fn("latup_vae_latent_family", ctypes.POINTER(_LatentFamily), _P)
_flux_unpack = _fn("latup_flux_unpack", ctypes.c_int, ctypes.POINTER(_Tensor), ctypes.c_int, ctypes.c_int,
                   ctypes.POINTER(_Tensor))
# The VAE encoder (issue 22): a library without it still loads; ENCODER says which this one is.
ENCODER = hasattr(_lib, "latup_vae_encode")
if ENCODER:
    _vae_load_parts = _fn("latup_vae_load_parts", ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(_P))
    _vae_encoder_name = _fn("latup_vae_encoder_name", ctypes.c_char_p, ctypes.c_int)
    _vae_plan_encode = _fn("latup_vae_plan_encode", ctypes.c_int, _P, ctypes.c_int, ctypes.c_int,
                           ctypes.POINTER(_EncodeOpts), ctypes.POINTER(_DecodePlan))
    _vae_encode = _fn("latup_vae_encode", ctypes.c_int, _P, ctypes.POINTER(_Tensor), ctypes.POINTER(_Tensor),
                      ctypes.POINTER(_EncodeOpts))
    _latent_from_vae = _fn("latup_latent_from_vae", None, ctypes.POINTER(_Tensor), ctypes.POINTER(_LatentFamily))
_png_write = _fn("latup_png_write", ctypes.c_int, ctypes.c_char_p, ctypes.POINTER(_Tensor), ctypes.c_int, ctypes.c_int)
PIXELS_UNIT, PIXELS_SIGNED = 0, 1  # latup_pixel_range

# Whether this library has the progress callback (latup_progress_fn, LATUP_E_CANCELLED): a library
# without it names status 7 as it names any status it does not know.
PROGRESS = _status_name(E_CANCELLED) != _status_name(1000)

_v = _version().decode()
if int(_v.split(".")[0]) != _MAJOR:
    raise ImportError("latup: these bindings mirror liblatup %d.x, %s is %s" % (_MAJOR, _lib._name, _v))


class LatupError(Exception):
    """A library call failed: .status is the latup_status (also the CLI's exit code), str() the
    library's one line (naming the file, tensor, expected and found). Each status raises a subclass
    that is also the built-in exception a Python caller expects (the table in docs/python.md): an
    `except FileNotFoundError` or `except ValueError` catches latup's as it catches open()'s."""

    NAMES = {E_USAGE: "usage", E_INPUT: "bad input", E_NOMEM: "out of memory", E_IO: "i/o",
             E_INTERNAL: "internal", E_DEVICE: "device", E_CANCELLED: "cancelled"}

    def __init__(self, status, message, errno=None, filename=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.filename = filename  # the path of the call, where it had one
        if isinstance(self, OSError):
            self.errno, self.strerror = errno, message

    def __str__(self):
        return self.message  # OSError's str() would prefix "[Errno N]" and append the file name again

    def __reduce__(self):  # pickles (multiprocessing) as the same class, status and message
        return type(self), (self.status, self.message, getattr(self, "errno", None), self.filename)

    @property
    def kind(self):
        return self.NAMES.get(self.status, "status %d" % self.status)


class LatupUsageError(LatupError, ValueError):
    """E_USAGE: an argument the library refuses (a scale the model has no head for, a bad option)."""


class LatupInputError(LatupError, ValueError):
    """E_INPUT: bad data: a malformed file, a wrong shape, a missing tensor, a NaN."""


class LatupMemoryError(LatupError, MemoryError):
    """E_NOMEM: an allocation failed, or the call cannot fit max_memory."""


class LatupIOError(LatupError, OSError):
    """E_IO: the OS refused to open, read, write or rename a file (.errno when the message names it)."""

    def __new__(cls, status, message, errno=None, filename=None):
        # OSError.__new__ would read (status, message) as (errno, strerror): give it the message alone
        return OSError.__new__(cls, message)


class LatupFileNotFoundError(LatupIOError, FileNotFoundError):
    pass


class LatupPermissionError(LatupIOError, PermissionError):
    pass


class LatupIsADirectoryError(LatupIOError, IsADirectoryError):
    pass


class LatupNotADirectoryError(LatupIOError, NotADirectoryError):
    pass


class LatupInternalError(LatupError, RuntimeError):
    """E_INTERNAL: latup broke its own invariant (a bug to report)."""


class LatupDeviceError(LatupError, RuntimeError):
    """E_DEVICE: the device asked for cannot run here (a build without CUDA, no GPU)."""


class LatupCancelledError(LatupError):
    """E_CANCELLED: the progress callback stopped the call (when it raised, its exception is
    raised instead of this one)."""


_BY_STATUS = {E_USAGE: LatupUsageError, E_INPUT: LatupInputError, E_NOMEM: LatupMemoryError, E_IO: LatupIOError,
              E_INTERNAL: LatupInternalError, E_DEVICE: LatupDeviceError, E_CANCELLED: LatupCancelledError}
_BY_ERRNO = {errno.ENOENT: LatupFileNotFoundError, errno.EACCES: LatupPermissionError,
             errno.EPERM: LatupPermissionError, errno.EISDIR: LatupIsADirectoryError,
             errno.ENOTDIR: LatupNotADirectoryError}


def _error(status, message, filename=None):
    """The exception for a failed call. The library reports an OS error as "...: <strerror>", from
    the same C library (and locale) as os.strerror, so the errno is recovered from the text."""
    cls, code = _BY_STATUS.get(status, LatupError), None
    if status == E_IO:
        for e in sorted(_BY_ERRNO) + [errno.ENOSPC, errno.EROFS, errno.EEXIST, errno.ELOOP, errno.ENAMETOOLONG]:
            if ": " + os.strerror(e) in message:
                cls, code = _BY_ERRNO.get(e, LatupIOError), e
                break
    if filename is not None:
        filename = os.fsdecode(filename)
    return cls(status, message, code, filename)


def _check(status, filename=None):
    if status != OK:
        raise _error(status, _last_error().decode("utf-8", "replace"), filename)


# ---- arguments: checked here, before ctypes (which would wrap an int, cut a string at a NUL and
# pass any pointer it is given) -------------------------------------------------------------------

INT_MAX = (1 << 31) - 1
INT64_MAX = (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1
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


def _torch_of(x):
    """The torch module when x is a torch tensor, else None. torch is never imported here: a
    tensor can only come from a caller that imported it already."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return torch
    return None


def _numpy_of(x):
    """x as numpy: a torch tensor through its CPU float32 copy (no copy for a CPU float32 contiguous
    tensor; bfloat16, which numpy lacks, and tensors that require grad are converted); else x."""
    torch = _torch_of(x)
    if torch is None:
        return x
    return x.detach().to("cpu", torch.float32).contiguous().numpy()


def _like(y, x):
    """y (numpy) as the kind of x: a torch tensor on x's device for a torch x (sharing y's memory
    on the CPU), else y."""
    torch = _torch_of(x)
    if torch is None:
        return y
    t = torch.from_numpy(y)
    return t if x.device.type == "cpu" else t.to(x.device)


def _as_input(x, name="x"):
    """x as the library reads it: an aligned, C-contiguous, native-order float32 array of 1 to
    MAX_DIMS dimensions. The array itself when it already is one (no copy); else a converted copy
    (misaligned, strided, Fortran-order or byte-swapped arrays, other float and integer dtypes).
    Complex, bool, object and text arrays: TypeError; another rank: ValueError. A torch tensor
    goes through _numpy_of."""
    a = np.asarray(_numpy_of(x))  # the array itself for an ndarray (a subclass: its plain data)
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


class _Progress:
    """progress= as the library's latup_progress_fn. An exception raised by the callable (a
    KeyboardInterrupt arriving while it runs included) is kept and stops the call: the library
    returns E_CANCELLED, and _call raises the kept exception instead. ctypes would print and drop
    an exception raised through a callback, so none may leave __call__."""

    def __init__(self, fn):
        if not callable(fn):
            raise TypeError("progress: a callable(done, total), got %s" % type(fn).__name__)
        if not PROGRESS:
            raise LatupUsageError(E_USAGE, "progress: this liblatup (%s, %s) has no progress callback; it needs "
                                  "a build with LATUP_E_CANCELLED (latup 0.1 after issue 21)" % (version(), _lib._name))
        self.fn, self.error = fn, None
        self.c_fn = _ProgressFn(self)  # kept here: the library calls it until the call returns

    def __call__(self, user, done, total):
        if self.error is not None:
            return 1
        try:
            self.fn(done, total)
        except BaseException as e:  # noqa: B036 (KeyboardInterrupt too: it must stop the call)
            self.error = e
            return 1
        return 0


def _call(lua, vae, fields, x, threads, plan_only=False, progress=None):
    """latup_prepare, then (unless plan_only) latup_execute, on x (an array from _as_input, or a shape
    from _shape_of): the plan as a dict, or the output. lua and vae (either may be None) are held in
    use from the prepare to the call's free, so a close() on another thread waits for this call.
    progress: None or a callable(done, total) (_Progress).

    The thread count is set on the calling thread only (an OpenMP setting of that thread; OpenBLAS
    stays at one thread): calls on other threads keep theirs and run at the same time."""
    if plan_only:
        xt = _Tensor()
        xt.ndim = len(x)
        for i, n in enumerate(x):
            xt.shape[i] = n
    else:
        xt = _tensor_of(x)
    prog = _Progress(progress) if progress is not None else None
    with contextlib.ExitStack() as held:
        o = _CallOpts(**fields)
        if prog is not None:
            o.on_progress = prog.c_fn
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
            st = _execute(c, ctypes.byref(xt), None, ctypes.byref(out))
            if st == E_CANCELLED and prog is not None and prog.error is not None:
                raise prog.error
            _check(st)
            return _to_numpy(out)
        finally:
            _call_free(c)


def _models(lua, vae):
    if not isinstance(lua, Lua):
        raise TypeError("lua: a latup.Lua, got %s" % type(lua).__name__)
    if not isinstance(vae, Vae):
        raise TypeError("vae: a latup.Vae, got %s" % type(vae).__name__)


def upscale_decode(lua, vae, z, scale=2, threads=None, progress=None):
    """latup run: z upscaled by lua, then decoded by vae, as one call planned against vae.max_memory
    (the whole process: both models, every tensor, the larger stage's scratch). Arguments as
    Lua.upscale and Vae.decode (docs/python.md); threads None or 0: vae.threads. progress: the
    upscale's and the decode's steps counted together."""
    _models(lua, vae)
    fields = dict(vae._fields(), scale=_scale(scale))
    return _like(_call(lua, vae, fields, _as_input(z, "z"), _threads(threads, vae.threads), progress=progress), z)


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
    _check(_tensor_read(p, k, ctypes.byref(t), None), p)
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
        _check(_lua_load(p, ctypes.byref(m)), p)
        self._open(m)
        self.path = os.fsdecode(os.fspath(path))
        self.threads = threads
        c = _lua_config(m).contents
        self.in_channels, self.out_channels = c.in_chans, c.out_chans
        self.scales = tuple(c.scales[i] for i in range(c.n_scales))
        self.embed_dim, self.window_size, self.n_params = c.embed_dim, c.window_size, c.n_params

    def _fields(self, scale):
        return {"scale": _scale(scale), "device": _device_code(self.device)}

    def upscale(self, x, scale=2, threads=None, progress=None):
        """x: [C,H,W] or [B,C,H,W] VAE-space latent -> float32 [.., C, scale*H, scale*W].
        scale: an int 2..8 the model has (one it lacks: LatupUsageError). threads: None or 0
        (the model's threads), or 1..4096. progress: None or callable(done, total), called after
        each RSTB and head; an exception it raises stops the call and is raised here."""
        fields = self._fields(scale)
        return _like(_call(self, None, fields, _as_input(x), _threads(threads, self.threads), progress=progress), x)

    def plan(self, shape, scale=2, threads=None):
        """What upscale would do with an input of this shape, nothing computed: a dict of its arena
        and the memory of the whole call (bytes)."""
        fields = self._fields(scale)
        return _call(self, None, fields, _shape_of(shape), _threads(threads, self.threads), plan_only=True)


_PARTS = {"decoder": VAE_DECODER_PART, "encoder": VAE_ENCODER_PART}
_NO_RANGE = object()  # range= not given (the pixel functions below: it is required)


def _parts(parts):
    """parts= of Vae: None (the library's default), "decoder", "encoder", or a sequence of them."""
    if parts is None:
        return 0
    names = (parts,) if isinstance(parts, str) else parts
    try:
        names = tuple(names)
    except TypeError:
        raise TypeError("parts: \"decoder\", \"encoder\" or a sequence of them, got %s" % type(parts).__name__) \
            from None
    bits = 0
    for n in names:
        if not isinstance(n, str) or n not in _PARTS:
            raise ValueError("parts: \"decoder\", \"encoder\" or a sequence of them, got %r" % (parts,))
        bits |= _PARTS[n]
    if not bits:
        raise ValueError("parts: name at least one of \"decoder\", \"encoder\" (None: the decoder, and the "
                         "encoder when the file holds one)")
    return bits


def _no_encoder_api(what):
    return LatupUsageError(E_USAGE, "%s: this liblatup (%s, %s) has no VAE encoder; it needs a build with "
                           "latup_vae_encode (latup 0.1 after issue 22)" % (what, version(), _lib._name))


class Vae(_Model):
    """The AutoencoderKL of SD 1.x/2.x, SDXL, SD3 or FLUX.1 (decoder, and encoder), from any
    checkpoint holding one.

    parts: None loads the decoder (required) and the encoder when the file holds one
    (latup_vae_load); "decoder" or "encoder" loads that part only, required, and ("decoder",
    "encoder") both, required (latup_vae_load_parts): a process that only encodes, or only
    decodes, holds only what it runs. max_memory: bytes (int) or "4G"-style text, up to 2**60; a
    decode or encode over it is tiled (an approximation), and one no tile fits raises LatupError
    (status E_NOMEM) naming the smallest budget that works. None: 3/4 of physical memory or of the
    cgroup limit; 0: no limit. tile/overlap: force tiling (latent pixels): tile None or 0
    (automatic) or 4..8192, overlap None or 0 (tile / 4) or 1..8191, under the tile. threads: None
    or 0 (default_threads()) or 1..4096. The attributes are checked again at each call, so a value
    assigned later is too.

    has_decoder, has_encoder: the parts loaded; encoder: "none", "ldm" (the deep Encoder) or
    "patch" (one p x p stride-p convolution, latup's trained demo VAE); upsampling / downsampling:
    the decoder's and the encoder's factor (8; None without that part); n_params /
    encoder_params: each part's parameters (0 without it)."""

    _free = staticmethod(_vae_free)

    def __init__(self, path, threads=None, max_memory=None, tile=None, overlap=None, device="cpu", parts=None):
        p = _path(path)
        _threads(threads)
        _tile(tile, overlap)
        bits = _parts(parts)
        self.max_memory = _max_memory(max_memory)
        self.device = _device(device)
        if bits & VAE_ENCODER_PART and not ENCODER:
            raise _no_encoder_api("Vae(parts=%r)" % (parts,))
        v = _P()  # (a library without the encoder loads the decoder alone: parts="decoder")
        _check(_vae_load_parts(p, bits, ctypes.byref(v)) if bits and ENCODER else _vae_load(p, ctypes.byref(v)), p)
        self._open(v)
        self.path = os.fsdecode(os.fspath(path))
        self.threads, self.tile, self.overlap = threads, tile, overlap
        c = _vae_config(v).contents
        self.latent_channels, self.n_params = c.z_channels, c.n_params
        if ENCODER:
            self.has_decoder, self.encoder = bool(c.has_decoder), _vae_encoder_name(c.encoder).decode()
            self.encoder_params, self.has_quant_conv = c.enc_params, bool(c.has_quant_conv)
            self.downsampling = (c.enc_patch if c.encoder == VAE_ENCODER_PATCH else
                                 1 << (c.enc_n_levels - 1) if c.encoder == VAE_ENCODER_LDM else None)
        else:  # a library from before the encoder: the decoder alone
            self.has_decoder, self.encoder, self.encoder_params, self.has_quant_conv = True, "none", 0, False
            self.downsampling = None
        self.has_encoder = self.encoder != "none"
        self.upsampling = 1 << (c.n_levels - 1) if self.has_decoder else None
        # A diffusers folder's config.json: its scaling_factor and shift_factor (to_vae_space(z, vae));
        # None for a VAE read from a file, whose latent space the weights do not say
        f = _vae_latent_family(v)
        self.latent_scaling = float(f.contents.scaling) if f else None
        self.latent_shift = float(f.contents.shift) if f else None

    def decode(self, z, threads=None, progress=None):
        """z: [C,h,w] or [B,C,h,w] decoder-ready latent -> float32 [.., 3, f*h, f*w] (f = 8 for the
        released VAEs), the raw decoder output (about [-1, 1]: to_uint8(img, range="[-1,1]")).
        progress: as Lua.upscale, after each decoder stage and tile."""
        return _like(_call(None, self, self._fields(), _as_input(z, "z"), _threads(threads, self.threads),
                           progress=progress), z)

    def plan(self, shape, threads=None):
        """What decode would do with an input of this shape, nothing computed: a dict of the tiles
        (exact or tiled, and why) and the memory of the whole call against max_memory (bytes)."""
        return _call(None, self, self._fields(), _shape_of(shape), _threads(threads, self.threads), plan_only=True)

    def _fields(self):
        tile, overlap = _tile(self.tile, self.overlap)
        return {"device": _device_code(self.device), "max_memory": _parse_size(self.max_memory), "tile": tile,
                "overlap": overlap}

    def _encode_opts(self, sample, seed, tile, overlap, max_memory):
        """latup_encode_opts of a call: the arguments given, else (None) the model's attributes."""
        if not ENCODER:
            raise _no_encoder_api("Vae.encode")
        if not isinstance(sample, (bool, np.bool_)):
            raise TypeError("sample: True (a draw from the posterior) or False (its mean), got %r" % (sample,))
        t, o = _tile(self.tile if tile is None else tile, self.overlap if overlap is None else overlap)
        budget = _parse_size(self.max_memory if max_memory is None else max_memory)
        return _EncodeOpts(device=_device_code(self.device), tile=t, overlap=o, max_memory=budget,
                           sample=int(bool(sample)), seed=_int(seed, "seed", 0, UINT64_MAX))

    def encode(self, image, range=_NO_RANGE, sample=False, seed=0, tile=None, overlap=None, max_memory=None,
               threads=None, progress=None):
        """image: RGB [3,H,W] or [B,3,H,W] -> float32 [.., C, H//f, W//f] (f = 8 for the released
        VAEs), the VAE-space latent Vae.decode and Lua.upscale take (to_vae_space's output;
        from_vae_space(z, family) gives a diffusion model's). range (required): "[-1,1]" for the
        VAE's own range (diffusers' image processor output), "[0,1]" for an image read from a PNG
        (read(), ComfyUI's IMAGE moved to [3,H,W]), converted as 2x - 1; every value must lie in
        it (else ValueError naming what was found). The posterior's mean, or with sample=True a
        draw mean + exp(logvar / 2) * eps, eps from latup's own normal generator seeded by seed
        (0..2**64-1; not torch's). Any H, W >= f: the latent is H // f x W // f, as the model
        itself computes it (latup_vae_encode; diffusers resizes to multiples of 8 first). tile, overlap, max_memory: this call's
        (None: the model's attributes), as for decode: an image whose encode exceeds max_memory is
        encoded in tiles, an approximation. progress: as Lua.upscale, after each encoder stage and
        tile. Needs the encoder (has_encoder)."""
        o = self._encode_opts(sample, seed, tile, overlap, max_memory)
        r = _range(range, "Vae.encode")
        a = _as_input(image, "image")
        if a.ndim not in (3, 4) or a.shape[-3] != 3:
            raise ValueError("image: shape %s, expected an RGB image [3,H,W] or a batch [B,3,H,W]" % (list(a.shape),))
        lo = -1.0 if r == PIXELS_SIGNED else 0.0
        if a.size:
            mn, mx = float(a.min()), float(a.max())
            if not (lo <= mn and mx <= 1.0):  # NaN fails both
                hint = (" (an image in [-1,1]? give range=\"[-1,1]\")" if r == PIXELS_UNIT and mn >= -1.0 and
                        mx <= 1.0 else "")
                raise ValueError("image: values from %g to %g, outside range=\"%s\"%s: clamp it first, or give the "
                                 "range it is in" % (mn, mx, "[-1,1]" if r == PIXELS_SIGNED else "[0,1]", hint))
        if r == PIXELS_UNIT:
            a = a * np.float32(2) - np.float32(1)  # a new float32 array, C-contiguous: the VAE's range
        prog = _Progress(progress) if progress is not None else None
        if prog is not None:
            o.on_progress = prog.c_fn
        t, out = _tensor_of(a), _Tensor()
        with self._use() as v:
            _set_threads(_threads(threads, self.threads) or _default_threads())
            st = _vae_encode(v, ctypes.byref(t), ctypes.byref(out), ctypes.byref(o))
        if st == E_CANCELLED and prog is not None and prog.error is not None:
            raise prog.error
        _check(st)
        return _like(_to_numpy(out), image)

    def plan_encode(self, shape, tile=None, overlap=None, max_memory=None):
        """What encode would do with an image of this shape ([3,H,W] or [B,3,H,W]; H and W are what
        count), nothing computed: a dict of the latent size h, w (of one tile when tiled), exact or
        tiled and why, the arena of one encode (or tile) and the process's peak (bytes)."""
        o = self._encode_opts(False, 0, tile, overlap, max_memory)
        dims = _shape_of(shape)
        if len(dims) not in (3, 4) or dims[-3] != 3:
            raise ValueError("shape: %r, expected an RGB image [3,H,W] or a batch [B,3,H,W]" % (dims,))
        H, W = _int(dims[-2], "shape[-2]", 0, INT_MAX), _int(dims[-1], "shape[-1]", 0, INT_MAX)
        p = _DecodePlan()
        with self._use() as v:
            _check(_vae_plan_encode(v, H, W, ctypes.byref(o), ctypes.byref(p)))
        return {"input_shape": dims, "h": p.plan.h, "w": p.plan.w, "tiled": bool(p.tiled), "tile": p.tile,
                "overlap": p.overlap, "reason": p.reason.decode("utf-8", "replace"), "arena": p.plan.mem.arena,
                "weights": p.plan.mem.weights, "peak": p.peak}


# ---- latents, images ----------------------------------------------------------------------------------


def _family(family, z):
    """(the latup_latent_family pointer, its name) of family= for a latent z: a family's name ("flux",
    "sd3", "sdxl", "sd"), or a Vae loaded from a diffusers folder (its config.json's constants)."""
    if isinstance(family, Vae):
        if family.latent_scaling is None:
            raise ValueError("family: %s was not loaded from a diffusers folder, so its latent space is not known: "
                             "name the family ('flux', 'sd3', 'sdxl', 'sd')" % (family.path,))
        f = ctypes.pointer(_LatentFamily(family.path.encode("utf-8", "replace"), family.latent_scaling,
                                         family.latent_shift, family.latent_channels))
        family = family.path
    elif not isinstance(family, str):
        raise TypeError("family: a str or a Vae, got %s" % type(family).__name__)
    else:
        f = _latent_family_find(family.encode("utf-8", "replace")) if "\0" not in family else None
    if not f:
        raise ValueError("family: %r is not a latent family latup knows ('flux', 'sd3', 'sdxl', 'sd')" % (family,))
    a = _as_input(z, "z")
    if a.ndim not in (3, 4) or a.shape[-3] != f.contents.channels:
        raise ValueError("z: shape %s: a %r latent is [%d,H,W] or [B,%d,H,W] (packed FLUX tokens: flux_unpack "
                         "first)" % (list(a.shape), family, f.contents.channels, f.contents.channels))
    return f, a


def to_vae_space(z, family):
    """A diffusion pipeline's latent -> the decoder-ready latent Lua.upscale and Vae.decode take:
    z / scaling + shift, with the family's constants ("flux", "sd3", "sdxl", "sd"; the CLI's
    --diffusion-latent), or with those of a Vae loaded from a diffusers folder (its config.json's
    scaling_factor and shift_factor; the CLI's --diffusion-latent vae). z: [C,H,W] or [B,C,H,W]
    with the family's channels (16 or 4); a new float32 array (z is not changed), a torch tensor
    for a torch z."""
    f, a = _family(family, z)
    out = np.array(a, np.float32, order="C", copy=True)  # the library converts in place
    t = _tensor_of(out)
    _latent_to_vae(ctypes.byref(t), f)
    return _like(out, z)


def from_vae_space(z, family):
    """The inverse of to_vae_space: a VAE-space latent (Vae.encode's, Lua.upscale's) -> the diffusion
    model's latent, (z - shift) * scaling (latup_latent_from_vae; the CLI's encode
    --diffusion-latent). family, z and the result as to_vae_space."""
    f, a = _family(family, z)
    if not ENCODER:
        raise _no_encoder_api("from_vae_space")
    out = np.array(a, np.float32, order="C", copy=True)  # the library converts in place
    t = _tensor_of(out)
    _latent_from_vae(ctypes.byref(t), f)
    return _like(out, z)


def flux_unpack(tokens, h, w):
    """FLUX's packed transformer tokens [B, (h/2)*(w/2), 4C] (or [(h/2)*(w/2), 4C]), what a diffusers
    FluxPipeline gives with output_type="latent", -> the latent [B, C, h, w] (the CLI's --flux-packed
    HxW). h, w: the latent size, the image size / 8, both even. Still in the pipeline's space:
    to_vae_space(.., "flux") next."""
    h, w = _int(h, "h", 2, INT_MAX), _int(w, "w", 2, INT_MAX)
    a = _as_input(tokens, "tokens")
    t, out = _tensor_of(a), _Tensor()
    _check(_flux_unpack(ctypes.byref(t), h, w, ctypes.byref(out)))
    return _like(_to_numpy(out), tokens)


# The two value ranges of pixels, by name: a VAE decoder's output is about [-1, 1] (diffusers'
# (x + 1) / 2), a pixel model's (SwinIR) and an image read from a PNG are in [0, 1]. There is no
# default: the same numbers read in the other range come out washed out or too dark, silently.
_RANGES = {"[-1,1]": PIXELS_SIGNED, "[0,1]": PIXELS_UNIT}


def _range(value, fn):
    if value is _NO_RANGE:
        raise TypeError("%s: give range=\"[-1,1]\" for a VAE decode (Vae.decode, upscale_decode) or the VAE's own "
                        "range, or range=\"[0,1]\" for a pixel model's output (SwinIR) or an image read from a PNG"
                        % fn)
    if not isinstance(value, str) or value.replace(" ", "") not in _RANGES:
        raise ValueError("%s: range is \"[-1,1]\" (a VAE decode) or \"[0,1]\" (SwinIR, PNG), got %r" % (fn, value))
    return _RANGES[value.replace(" ", "")]


def _image(img, name="img"):
    a = np.asarray(_numpy_of(img), dtype=np.float32)
    if a.ndim not in (3, 4) or a.shape[-3] != 3:
        raise ValueError("%s: shape %s, expected an RGB image [3,H,W] or a batch [B,3,H,W]" % (name, list(a.shape)))
    return a


def to_unit(img, range=_NO_RANGE):
    """RGB [..,3,H,W] -> [..,H,W,3] float32 in [0, 1] (ComfyUI's IMAGE layout). range (required):
    "[-1,1]" for a VAE decode, diffusers' (x / 2 + 0.5).clamp(0, 1); "[0,1]" for SwinIR's output or
    an image read from a PNG, clamped. A torch tensor gives a torch tensor."""
    r = _range(range, "to_unit")
    a = _image(img)
    if r == PIXELS_SIGNED:
        a = a * np.float32(0.5) + np.float32(0.5)
    return _like(np.ascontiguousarray(np.clip(np.moveaxis(a, -3, -1), 0.0, 1.0)), img)


def to_uint8(img, range=_NO_RANGE):
    """RGB [..,3,H,W] -> [..,H,W,3] uint8, the bytes write_png(.., range=range) writes: range
    (required) as to_unit; "[-1,1]" rounds half to even as diffusers' numpy_to_pil, "[0,1]" half
    away from zero. A torch tensor gives a torch tensor."""
    v = np.asarray(_numpy_of(to_unit(img, range=range))) * np.float32(255)
    if _RANGES[range.replace(" ", "")] == PIXELS_SIGNED:
        v = np.round(v)
    else:
        f = np.floor(v)
        v = np.where(v - f >= np.float32(0.5), f + np.float32(1), f)  # v - f is exact below 2**24
    return _like(v.astype(np.uint8), img)


def write_png(path, img, range=_NO_RANGE, bits=8):
    """img [3,H,W] or [1,3,H,W] -> an RGB PNG at path, 8 or 16 bits per sample, written to a
    temporary file and renamed (never a partial file). range (required) as to_unit. An image
    holding NaN or Inf is refused (LatupInputError) and nothing is written."""
    p, r = _path(path), _range(range, "write_png")
    b = _int(bits, "bits", 8, 16)
    if b not in (8, 16):
        raise ValueError("bits: 8 or 16, got %d" % b)
    a = _as_input(img, "img")
    t = _tensor_of(a)
    _check(_png_write(p, ctypes.byref(t), r, b), p)
