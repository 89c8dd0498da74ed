"""test_hostile.py — the package under hostile use (issue 19): close() racing calls on other
threads (it waits for them, never frees under one; calls on one model still run concurrently),
NUL characters in paths and keys, every integer argument's type and range (no wrap, no
truncation), and arrays that are misaligned, strided, byte-swapped, of another dtype or of a rank
the library does not take. Run by `make test-python`, and under ASan + UBSan by
`make SANITIZE=1 test-python` (where a use after free or a misaligned load fails the run)."""
import gc
import os
import pathlib
import re
import sys
import threading
import time
import unittest

import numpy as np

import latup

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LUA = os.path.join(ROOT, "ref_data/small/model.safetensors.gz")
WIDE = os.path.join(ROOT, "ref_data/wide/model.safetensors.gz")  # embed 360, window 16: a slower call
VAE = os.path.join(ROOT, "ref_data/vae/flux_small.ldm.safetensors.gz")
LATENT = os.path.join(ROOT, "ref_data/demo/latent.npy")
COMFY = os.path.join(ROOT, "tests/data/latent/comfyui_flux_b2.latent")
WAIT = 60  # seconds before a test gives up on an event (ASan runs are ~10x slower)


class ExecuteHook:
    """Replaces latup._execute (looked up at each call) with a wrapper that reports entries and
    exits and can hold a call before it enters the library, so a test orders threads exactly."""

    def __init__(self, hold=None):
        self.real = latup._execute
        self.entered = threading.Event()
        self.returned = threading.Event()
        self.hold = hold  # an Event the call waits for before entering C, or None
        self.lock = threading.Lock()
        self.inside = 0
        self.most = 0
        self.barrier = None  # a Barrier every call waits at once inside (concurrency test)

    def __call__(self, *args):
        with self.lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
        self.entered.set()
        try:
            if self.hold is not None and not self.hold.wait(WAIT):
                raise AssertionError("the test never released the held call")
            if self.barrier is not None:
                self.barrier.wait(20)  # BrokenBarrierError if the calls cannot overlap
            return self.real(*args)
        finally:
            with self.lock:
                self.inside -= 1
            self.returned.set()

    def __enter__(self):
        latup._execute = self
        return self

    def __exit__(self, *exc):
        latup._execute = self.real


class Worker(threading.Thread):
    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn, self.result, self.error = fn, None, None

    def run(self):
        try:
            self.result = self.fn()
        except BaseException as e:  # reported by the test
            self.error = e


class TestCloseUnderCalls(unittest.TestCase):
    """Class 1: close() from another thread waits for the call in flight; never frees under it."""

    def setUp(self):
        self.x = np.load(LATENT)
        with latup.Lua(LUA, threads=2) as m:
            self.want = m.upscale(self.x, 2)

    def test_close_waits_for_the_call(self):
        m = latup.Lua(LUA, threads=2)
        go = threading.Event()
        with ExecuteHook(hold=go) as hook:
            w = Worker(lambda: m.upscale(self.x, 2))
            w.start()
            self.assertTrue(hook.entered.wait(WAIT))
            closed = {}

            def close():
                m.close()
                closed["after_call"] = hook.returned.is_set()
            closer = threading.Thread(target=close, daemon=True)
            closer.start()
            deadline = time.monotonic() + WAIT
            while not m.closed and time.monotonic() < deadline:
                time.sleep(0.001)
            self.assertTrue(m.closed)
            time.sleep(0.1)
            self.assertTrue(closer.is_alive(), "close() returned while a call was running on the model")
            with self.assertRaisesRegex(ValueError, "closed"):  # a call after close() began is refused
                m.upscale(self.x, 2)
            with self.assertRaisesRegex(ValueError, "closed"):
                m.plan(self.x.shape, 2)
            go.set()
            closer.join(WAIT)
            w.join(WAIT)
        self.assertFalse(closer.is_alive())
        self.assertTrue(closed["after_call"], "close() returned before the call did")
        self.assertIsNone(w.error)
        self.assertTrue(np.array_equal(w.result, self.want))
        self.assertIsNone(m._handle)
        with self.assertRaisesRegex(ValueError, "closed"):
            m.upscale(self.x, 2)
        m.close()  # twice: nothing

    def test_close_during_a_real_call(self):
        """No hook: a call long enough to be inside the library when close() comes (the wide model);
        under ASan a free under it is a heap-use-after-free report."""
        m = latup.Lua(WIDE, threads=2)
        x = np.random.default_rng(19).standard_normal((16, 48, 48)).astype(np.float32)
        with latup.Lua(WIDE, threads=2) as other:
            want = other.upscale(x, 2)
        with ExecuteHook() as hook:  # only to learn when the call is about to enter the library
            w = Worker(lambda: m.upscale(x, 2))
            w.start()
            self.assertTrue(hook.entered.wait(WAIT))
            time.sleep(0.02)
            m.close()
            self.assertTrue(hook.returned.is_set(), "close() returned before the call did")
            w.join(WAIT)
        self.assertIsNone(w.error)
        self.assertTrue(np.array_equal(w.result, want))

    def test_vae_and_run_hold_both_models(self):
        lua, vae = latup.Lua(LUA, threads=2), latup.Vae(VAE, threads=2)
        want = latup.upscale_decode(lua, vae, self.x, 2)
        go = threading.Event()
        with ExecuteHook(hold=go) as hook:
            w = Worker(lambda: latup.upscale_decode(lua, vae, self.x, 2))
            w.start()
            self.assertTrue(hook.entered.wait(WAIT))
            closers = [threading.Thread(target=m.close, daemon=True) for m in (lua, vae)]
            for c in closers:
                c.start()
            time.sleep(0.1)
            self.assertTrue(all(c.is_alive() for c in closers), "a model was freed under upscale_decode")
            go.set()
            for c in closers:
                c.join(WAIT)
            w.join(WAIT)
        self.assertIsNone(w.error)
        self.assertTrue(np.array_equal(w.result, want))
        self.assertTrue(lua.closed and vae.closed)

    def test_calls_on_one_model_run_concurrently(self):
        """Two threads on one model are inside the library at once (each holds at a barrier inside
        the call until the other arrives), with their own thread counts, and give the same bits."""
        m = latup.Lua(LUA)
        with ExecuteHook() as hook:
            hook.barrier = threading.Barrier(2)
            ws = [Worker(lambda n=n: m.upscale(self.x, 2, threads=n)) for n in (1, 2)]
            for w in ws:
                w.start()
            for w in ws:
                w.join(WAIT)
        for w in ws:
            self.assertIsNone(w.error)
            self.assertTrue(np.array_equal(w.result, self.want))
        self.assertEqual(hook.most, 2)
        m.close()

    def test_close_inside_a_call_on_the_same_thread(self):
        """A close() that would wait for its own thread's call (a signal handler running between
        the call's return from C and its release of the model) is refused, not a deadlock."""
        m = latup.Lua(LUA, threads=2)
        seen = []

        class Closing:
            def __init__(self, real):
                self.real = real

            def __call__(self, *args):
                st = self.real(*args)
                try:
                    m.close()
                except RuntimeError as e:
                    seen.append(str(e))
                return st
        real = latup._execute
        latup._execute = Closing(real)
        try:
            self.assertTrue(np.array_equal(m.upscale(self.x, 2), self.want))
        finally:
            latup._execute = real
        self.assertEqual(len(seen), 1)
        self.assertIn("inside a call", seen[0])
        m.close()
        self.assertTrue(m.closed)

    def test_del_is_safe(self):
        """__del__ on a model whose constructor failed, on a closed one, on an open one: no error
        (an exception in __del__ only reaches sys.unraisablehook, so it is watched)."""
        seen = []
        old, sys.unraisablehook = sys.unraisablehook, seen.append
        try:
            with self.assertRaises(ValueError):
                latup.Lua(LUA, device="tpu")
            with self.assertRaises(latup.LatupError):
                latup.Vae(os.path.join(ROOT, "no such file"))
            with self.assertRaises(TypeError):
                latup.Vae(VAE, tile=2.5)
            m = latup.Lua(LUA)
            m.close()
            del m
            m = latup.Lua(LUA)
            y = m.upscale(self.x, 2)
            del m  # the output outlives its model: it is the library's buffer, not the model's
            gc.collect()
        finally:
            sys.unraisablehook = old
        self.assertEqual([str(u.exc_value) for u in seen], [])
        self.assertTrue(np.array_equal(y, self.want))


class TestStrings(unittest.TestCase):
    """Class 2: a NUL in a path or key is refused (ctypes would cut the string there); str, bytes
    and os.PathLike are taken alike."""

    def test_nul_in_model_paths(self):
        # the text before the NUL names a real model: without the check it would load
        for cls, path in ((latup.Lua, LUA), (latup.Vae, VAE)):
            for bad in (path + "\0.other", os.fsencode(path) + b"\0", pathlib.Path(path + "\0x")):
                with self.assertRaisesRegex(ValueError, "path: .*NUL"):
                    cls(bad)

    def test_nul_in_read(self):
        with self.assertRaisesRegex(ValueError, "path: .*NUL"):
            latup.read(LATENT + "\0.png")
        with self.assertRaisesRegex(ValueError, "key: .*NUL"):
            latup.read(COMFY, key="latent_tensor\0other")
        with self.assertRaisesRegex(ValueError, "key: .*NUL"):
            latup.read(COMFY, key=b"latent_tensor\0")

    def test_path_kinds(self):
        want = np.load(LATENT)
        for p in (LATENT, os.fsencode(LATENT), pathlib.Path(LATENT)):
            self.assertTrue(np.array_equal(latup.read(p), want))
        a = latup.read(COMFY)
        for k in ("latent_tensor", b"latent_tensor"):
            self.assertTrue(np.array_equal(latup.read(COMFY, key=k), a))
        for p in (pathlib.Path(LUA), os.fsencode(LUA)):
            with latup.Lua(p) as m:
                self.assertEqual(m.path, LUA)
        with latup.Vae(pathlib.Path(VAE)) as v:
            self.assertEqual(v.path, VAE)
        for bad in (3, None, bytearray(os.fsencode(LATENT))):
            with self.assertRaisesRegex(TypeError, "path"):
                latup.read(bad)
        with self.assertRaisesRegex(TypeError, "key"):
            latup.read(COMFY, key=3)
        with self.assertRaisesRegex(TypeError, "key"):
            latup.read(COMFY, key=pathlib.Path("latent_tensor"))
        with self.assertRaisesRegex(ValueError, "key"):
            latup.read(COMFY, key="\udcff")  # not UTF-8 text
        with self.assertRaises(latup.LatupError) as e:  # an empty key is a key, not the default
            latup.read(COMFY, key="")
        self.assertEqual(e.exception.status, latup.E_INPUT)


class TestIntegers(unittest.TestCase):
    """Class 3: each integer argument takes int and numpy integers in its range; bool, float (2.0
    too) and out-of-range values are refused before anything reaches C."""

    @classmethod
    def setUpClass(cls):
        cls.lua = latup.Lua(LUA, threads=2)
        cls.vae = latup.Vae(VAE, threads=2)
        cls.x = np.load(LATENT)
        cls.small = cls.x[:, :8, :8].copy()

    @classmethod
    def tearDownClass(cls):
        cls.lua.close()
        cls.vae.close()

    def refused(self, exc, name, fn, *args, **kw):
        with self.assertRaisesRegex(exc, "^%s: " % re.escape(name)):
            fn(*args, **kw)

    def test_scale(self):
        want = self.lua.upscale(self.small, 2)
        for ok in (2, np.int64(2), np.uint8(2), np.int32(2)):
            self.assertTrue(np.array_equal(self.lua.upscale(self.small, ok), want))
        for bad in (2.0, 2.7, np.float32(2), True, np.bool_(True), "2", None, 2 + 0j):
            self.refused(TypeError, "scale", self.lua.upscale, self.small, bad)
        for bad in (2**32 + 2, 2**31 + 2, 2**64 + 2, -2, 0, 1, 9, np.uint64(2**63 + 2), np.int64(-(2**62))):
            self.refused(ValueError, "scale", self.lua.upscale, self.small, bad)
        for fn in (lambda s: self.lua.plan(self.small.shape, s),
                   lambda s: latup.upscale_decode(self.lua, self.vae, self.small, s),
                   lambda s: latup.plan_upscale_decode(self.lua, self.vae, self.small.shape, s)):
            self.refused(ValueError, "scale", fn, 2**32 + 2)
            self.refused(TypeError, "scale", fn, 2.7)
        with self.assertRaises(latup.LatupError) as e:  # in range, but not a head this model has
            self.lua.upscale(self.small, 8)
        self.assertEqual(e.exception.status, latup.E_USAGE)

    def test_threads(self):
        want = self.lua.upscale(self.small, 2)
        for ok in (None, 0, 1, np.int16(2), 3):
            self.assertTrue(np.array_equal(self.lua.upscale(self.small, 2, threads=ok), want))
        for bad in (1.5, 2.0, True, "2"):
            self.refused(TypeError, "threads", self.lua.upscale, self.small, 2, threads=bad)
            self.refused(TypeError, "threads", latup.Lua, LUA, threads=bad)
            self.refused(TypeError, "threads", latup.Vae, VAE, threads=bad)
            self.refused(TypeError, "threads", self.vae.decode, self.small, threads=bad)
        for bad in (-1, 4097, 2**32 + 2, 2**63):
            self.refused(ValueError, "threads", self.lua.upscale, self.small, 2, threads=bad)
            self.refused(ValueError, "threads", self.lua.plan, self.small.shape, 2, threads=bad)
            self.refused(ValueError, "threads", latup.Lua, LUA, threads=bad)
            self.refused(ValueError, "threads", self.vae.decode, self.small, threads=bad)
            self.refused(ValueError, "threads", self.vae.plan, self.small.shape, threads=bad)
            self.refused(ValueError, "threads", latup.upscale_decode, self.lua, self.vae, self.small, threads=bad)
        m = latup.Lua(LUA)
        m.threads = 2**32 + 1  # an attribute set later is checked at the call
        self.refused(ValueError, "threads", m.upscale, self.small, 2)
        m.close()

    def test_tile_and_overlap(self):
        exact = self.vae.decode(self.x)
        tiled = latup.Vae(VAE, tile=8, overlap=2, threads=2).decode(self.x)
        self.assertTrue(np.array_equal(latup.Vae(VAE, tile=np.int64(8), overlap=np.int8(2), threads=2).decode(self.x),
                                       tiled))
        self.assertFalse(np.array_equal(tiled, exact))
        for bad in (8.0, 8.5, True, "8"):
            self.refused(TypeError, "tile", latup.Vae, VAE, tile=bad)
            self.refused(TypeError, "overlap", latup.Vae, VAE, tile=8, overlap=bad if bad != "8" else "2")
        # 2**32 + 8 wrapped to a C int is 8: a different image, silently
        for bad in (2**32 + 8, 2**31 + 8, -1, 3, 8193, 2**64):
            self.refused(ValueError, "tile", latup.Vae, VAE, tile=bad)
        for bad in (-1, 2**32 + 2, 8192):
            self.refused(ValueError, "overlap", latup.Vae, VAE, tile=8, overlap=bad)
        self.refused(ValueError, "overlap", latup.Vae, VAE, tile=8, overlap=8)
        v = latup.Vae(VAE, threads=2)
        v.tile = 2**32 + 8  # an attribute set later is checked at the call
        self.refused(ValueError, "tile", v.decode, self.x)
        self.refused(ValueError, "tile", v.plan, self.x.shape)
        self.refused(ValueError, "tile", latup.upscale_decode, self.lua, v, self.small)
        v.tile, v.overlap = 8, -5
        self.refused(ValueError, "overlap", v.decode, self.x)
        v.close()

    def test_max_memory(self):
        for ok, want in ((np.int64(1 << 30), 1 << 30), ("2G", 2 << 30), (" 1.5G ", 3 << 29), (0, 0), ("0", 0),
                         (1 << 60, 1 << 60), ("1048576T", 1 << 60)):
            with latup.Vae(VAE, max_memory=ok) as v:
                self.assertEqual(v.max_memory, want)
        with latup.Vae(VAE) as v:
            self.assertEqual(v.max_memory, latup.default_max_memory())
        # -1 as a size_t is "no limit": refused, as is everything else out of range
        for bad in (-1, "-1", (1 << 60) + 1, 2**64 - 1, 2**64, "1048577T", "1.5", "1e9", "nan", "inf", "4 G", "",
                    "0x10", "1.0000000001G"):
            self.refused(ValueError, "max_memory", latup.Vae, VAE, max_memory=bad)
        for bad in (1.5e9, 2.0, True, b"2G", [1]):
            self.refused(TypeError, "max_memory", latup.Vae, VAE, max_memory=bad)
        v = latup.Vae(VAE, threads=2)
        v.max_memory = -1
        self.refused(ValueError, "max_memory", v.decode, self.x)
        self.refused(ValueError, "max_memory", latup.plan_upscale_decode, self.lua, v, self.small.shape)
        # 0 is the library's "no limit": the exact decode, however large
        v.max_memory = 0
        self.assertFalse(v.plan((16, 200, 200))["decode"]["tiled"])
        v.close()

    def test_device(self):
        for bad in ("tpu", "CPU", b"cpu", 0, 1, None, True):
            self.refused(ValueError, "device", latup.Lua, LUA, device=bad)
            self.refused(ValueError, "device", latup.Vae, VAE, device=bad)
        m = latup.Lua(LUA)
        m.device = 2**32  # wrapped to a C int, 0 would be "cpu"
        self.refused(ValueError, "device", m.upscale, self.small, 2)
        m.device = "cpu"
        self.assertEqual(m.upscale(self.small, 2).shape, (16, 16, 16))
        m.close()

    def test_plan_shapes(self):
        self.assertEqual(self.lua.plan((16, np.int64(8), 8), 2)["output_shape"], (16, 16, 16))
        for bad in ((16, 8.0, 8), (16, 8.5, 8), (16, True, 8), (16, "8", 8)):
            self.refused(TypeError, "shape[1]", self.lua.plan, bad, 2)
            self.refused(TypeError, "shape[1]", self.vae.plan, bad)
        for bad in ((16, -8, 8), (16, 2**63, 8), (16, 2**64 + 8, 8)):
            self.refused(ValueError, "shape[1]", self.lua.plan, bad, 2)
            self.refused(ValueError, "shape[1]", latup.plan_upscale_decode, self.lua, self.vae, bad)
        for bad in ((), (1, 1, 16, 8, 8)):
            self.refused(ValueError, "shape", self.lua.plan, bad, 2)
            self.refused(ValueError, "shape", self.vae.plan, bad)
        for bad in (16, "16x8x8", None):
            self.refused(TypeError, "shape", self.lua.plan, bad, 2)
        # in range but not a latent the model takes: the library's answer
        with self.assertRaises(latup.LatupError) as e:
            self.lua.plan((16, 0, 8), 2)
        self.assertEqual(e.exception.status, latup.E_INPUT)

    def test_model_arguments_are_models(self):
        """A Vae where a Lua goes would hand C the wrong structure."""
        self.refused(TypeError, "lua", latup.upscale_decode, self.vae, self.vae, self.small)
        self.refused(TypeError, "vae", latup.upscale_decode, self.lua, self.lua, self.small)
        self.refused(TypeError, "lua", latup.plan_upscale_decode, None, self.vae, self.small.shape)


class TestArrays(unittest.TestCase):
    """Class 4: the library gets aligned, C-contiguous, native float32 arrays of rank 1 to 4, copied
    when the caller's is not one; a rank or dtype it cannot take is refused first."""

    @classmethod
    def setUpClass(cls):
        cls.lua = latup.Lua(LUA, threads=2)
        cls.vae = latup.Vae(VAE, threads=2)
        cls.x = np.load(LATENT)[:, :12, :20].copy()
        cls.up = cls.lua.upscale(cls.x, 2)
        cls.img = cls.vae.decode(cls.x)

    @classmethod
    def tearDownClass(cls):
        cls.lua.close()
        cls.vae.close()

    def same(self, a):
        """a gives the aligned copy's results, upscaled and decoded, and went to C aligned."""
        c = latup._as_input(a)
        self.assertEqual(c.ctypes.data % 4, 0)
        self.assertTrue(c.flags.c_contiguous and c.flags.aligned)
        self.assertEqual(c.dtype, np.dtype(np.float32))
        self.assertTrue(c.dtype.isnative)
        self.assertTrue(np.array_equal(self.lua.upscale(a, 2), self.up))
        self.assertTrue(np.array_equal(self.vae.decode(a), self.img))
        self.assertTrue(np.array_equal(latup.upscale_decode(self.lua, self.vae, a[:, :8, :8], 2),
                                       latup.upscale_decode(self.lua, self.vae, self.x[:, :8, :8], 2)))

    def misaligned(self, offset):
        buf = bytearray(self.x.nbytes + offset)
        a = np.frombuffer(buf, dtype=np.float32, offset=offset, count=self.x.size).reshape(self.x.shape)
        a[...] = self.x
        return a

    def test_misaligned(self):
        for off in (1, 2, 3):
            a = self.misaligned(off)
            self.assertEqual(a.ctypes.data % 4, off)
            self.same(a)
        # a view into a bytes object at an odd offset (read-only)
        raw = b"\0" + self.x.tobytes()
        self.same(np.frombuffer(raw, dtype=np.float32, offset=1).reshape(self.x.shape))

    def test_strided_and_ordered(self):
        self.same(np.asfortranarray(self.x))
        wide = np.zeros((16, 12, 40), np.float32)
        wide[:, :, ::2] = self.x
        self.same(wide[:, :, ::2])
        self.same(self.x[:, ::-1, :][:, ::-1, :])
        b = np.broadcast_to(self.x[None], (2,) + self.x.shape)  # zero stride
        self.assertTrue(np.array_equal(self.lua.upscale(b, 2), np.stack([self.up, self.up])))

    def test_byte_order_and_dtypes(self):
        self.same(self.x.astype(">f4"))
        self.same(self.x.astype("<f4").view(self.x.dtype))
        self.same(self.x.astype(np.float64))
        self.same(self.x.astype(">f8"))
        ints = np.round(self.x * 4).astype(np.int32)
        self.assertTrue(np.array_equal(self.lua.upscale(ints, 2), self.lua.upscale(ints.astype(np.float32), 2)))
        self.assertTrue(np.array_equal(self.lua.upscale(self.x.tolist(), 2), self.up))  # a nested list
        for bad in (self.x.astype(np.complex64), self.x > 0, self.x.astype(object), self.x.astype(str),
                    np.zeros(self.x.shape, "V4")):
            with self.assertRaisesRegex(TypeError, "^x: .*dtype"):
                self.lua.upscale(bad, 2)
            with self.assertRaisesRegex(TypeError, "^z: .*dtype"):
                self.vae.decode(bad)

    def test_ranks(self):
        for bad in (np.float32(1.0), np.zeros((), np.float32), np.zeros((1, 1, 16, 8, 8), np.float32),
                    np.zeros((1,) * 8, np.float32), 3.0):
            with self.assertRaisesRegex(ValueError, r"^x: an array of \d dimensions"):
                self.lua.upscale(bad, 2)
            with self.assertRaisesRegex(ValueError, r"^z: an array of \d dimensions"):
                self.vae.decode(bad)
            with self.assertRaisesRegex(ValueError, r"^z: an array of \d dimensions"):
                latup.upscale_decode(self.lua, self.vae, bad)
        # ranks 1 to 4 reach the library, which answers for the shape
        for shape in ((16,), (16, 8), (0, 16, 8, 8), (16, 0, 8)):
            with self.assertRaises(latup.LatupError) as e:
                self.lua.upscale(np.zeros(shape, np.float32), 2)
            self.assertEqual(e.exception.status, latup.E_INPUT)

    def test_input_is_not_copied_when_it_need_not_be(self):
        self.assertIs(latup._as_input(self.x), self.x)
        ro = self.x.copy()
        ro.flags.writeable = False
        self.assertIs(latup._as_input(ro), ro)


if __name__ == "__main__":
    unittest.main()
