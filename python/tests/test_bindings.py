"""test_bindings.py — what issue 21 asked of the package: the diffusion-latent helpers
(to_vae_space, flux_unpack) against their formulas, write_png read back by a PNG decoder written
here, to_uint8/to_unit with an explicit pixel range, torch in -> torch out, exceptions that are
also the built-in types, the message when the library cannot be loaded, and the progress callback
(its tests skip, saying so, with a library built without it). Run by `make test-python`."""
import errno
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib

import numpy as np

import latup

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LUA = os.path.join(ROOT, "ref_data/small/model.safetensors.gz")
VAE = os.path.join(ROOT, "ref_data/vae/flux_small.ldm.safetensors.gz")
LATENT = os.path.join(ROOT, "ref_data/demo/latent.npy")  # [16,24,40]

try:
    import torch
except ImportError:
    torch = None

NO_PROGRESS = ("this liblatup has no progress callback (latup_status_name(7) is unknown): the progress tests "
               "run once the C side of issue 21 (latup_progress_fn, LATUP_E_CANCELLED) is merged")


def read_png(path):
    """A PNG decoder for what latup writes (RGB, 8 or 16 bits, not interlaced, any filter per row):
    (bit depth, [H,W,3] integer samples). ISO 15948: signature, chunks, zlib stream, row filters."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        assert zlib.crc32(kind + body) == struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0], "bad CRC"
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    W, H, depth, color, _, _, interlace = ihdr
    assert color == 2 and interlace == 0, "RGB, not interlaced"
    bpp = 3 * depth // 8
    raw = zlib.decompress(idat)
    stride = W * bpp
    rows, prev = [], bytearray(stride)
    for y in range(H):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    px = np.frombuffer(b"".join(rows), np.uint8 if depth == 8 else ">u2").reshape(H, W, 3)
    return depth, px.astype(np.int64)


class TestLatents(unittest.TestCase):
    # the published constants (diffusers' vae.config scaling_factor / shift_factor)
    FAMILIES = {"flux": (0.3611, 0.1159, 16), "sd3": (1.5305, 0.0609, 16), "sdxl": (0.13025, 0.0, 4),
                "sd": (0.18215, 0.0, 4)}

    def test_to_vae_space(self):
        rng = np.random.default_rng(1)
        for name, (scaling, shift, c) in self.FAMILIES.items():
            z = rng.standard_normal((2, c, 5, 6)).astype(np.float32)
            keep = z.copy()
            got = latup.to_vae_space(z, name)
            want = z / np.float32(scaling) + np.float32(shift)
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=name)
            self.assertTrue(np.array_equal(z, keep), "the input is left as it was")
            self.assertEqual(latup.to_vae_space(z[0], name).shape, (c, 5, 6))
            if latup.ENCODER:  # the inverse, (z - shift) * scaling (issue 22; test_encode.py has its errors)
                back = latup.from_vae_space(z, name)
                np.testing.assert_allclose(back, (z - np.float32(shift)) * np.float32(scaling), rtol=1e-6,
                                           atol=1e-6, err_msg=name)
                np.testing.assert_allclose(latup.to_vae_space(back, name), z, rtol=1e-5, atol=1e-5, err_msg=name)
                self.assertTrue(np.array_equal(z, keep))
                self.assertEqual(latup.from_vae_space(z[0], name).shape, (c, 5, 6))
        with self.assertRaises(ValueError) as e:
            latup.to_vae_space(np.zeros((4, 8, 8), np.float32), "flux")  # an SDXL latent given as FLUX
        self.assertIn("[16,H,W]", str(e.exception))
        with self.assertRaises(ValueError):
            latup.to_vae_space(np.zeros((16, 8, 8), np.float32), "sd2")
        with self.assertRaises(ValueError):
            latup.to_vae_space(np.zeros((16, 8, 8), np.float32), "flux\0x")

    def test_to_vae_space_of_a_diffusers_folder(self):
        """A Vae read from a diffusers folder carries its config.json's scaling_factor and shift_factor
        (tests/data/diffusers/flux_small: FLUX's), and to_vae_space takes it as the family; a Vae read
        from a file has none, and to_vae_space says so."""
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        weights = os.path.join(root, "ref_data", "vae", "flux_small.diffusers.safetensors.gz")
        with tempfile.TemporaryDirectory() as d:
            for src, dst in ((os.path.join(root, "tests", "data", "diffusers", "flux_small", "config.json"),
                              "config.json"), (weights, "diffusion_pytorch_model.safetensors")):
                with open(src, "rb") as f, open(os.path.join(d, dst), "wb") as g:
                    g.write(f.read())
            with latup.Vae(d) as v:
                self.assertAlmostEqual(v.latent_scaling, 0.3611, places=6)
                self.assertAlmostEqual(v.latent_shift, 0.1159, places=6)
                z = np.random.default_rng(2).standard_normal((16, 4, 5)).astype(np.float32)
                np.testing.assert_array_equal(latup.to_vae_space(z, v), latup.to_vae_space(z, "flux"))
                if latup.ENCODER:
                    np.testing.assert_array_equal(latup.from_vae_space(z, v), latup.from_vae_space(z, "flux"))
        with latup.Vae(weights) as v:
            self.assertIsNone(v.latent_scaling)
            self.assertIsNone(v.latent_shift)
            with self.assertRaises(ValueError) as e:
                latup.to_vae_space(np.zeros((16, 4, 4), np.float32), v)
            self.assertIn("not loaded from a diffusers folder", str(e.exception))
        with self.assertRaises(TypeError):
            latup.to_vae_space(np.zeros((16, 4, 4), np.float32), 0.3611)

    def test_flux_unpack(self):
        """diffusers' _unpack_latents: view(B, h/2, w/2, C, 2, 2).permute(0, 3, 1, 4, 2, 5)."""
        rng = np.random.default_rng(2)
        B, C, h, w = 2, 16, 6, 10
        tokens = rng.standard_normal((B, (h // 2) * (w // 2), 4 * C)).astype(np.float32)
        want = tokens.reshape(B, h // 2, w // 2, C, 2, 2).transpose(0, 3, 1, 4, 2, 5).reshape(B, C, h, w)
        self.assertTrue(np.array_equal(latup.flux_unpack(tokens, h, w), want))
        self.assertTrue(np.array_equal(latup.flux_unpack(tokens[0], h, w), want[0:1]))
        with self.assertRaises(latup.LatupInputError) as e:  # a ValueError too
            latup.flux_unpack(tokens, 8, 8)
        self.assertIsInstance(e.exception, ValueError)
        self.assertIn("15 tokens, a 8x8 latent packs into 16", str(e.exception))
        with self.assertRaises(ValueError):
            latup.flux_unpack(tokens, 0, 10)


class TestPixels(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        rng = np.random.default_rng(3)
        self.unit = rng.random((3, 20, 24), dtype=np.float32)  # a SwinIR output: [0, 1]
        self.signed = self.unit * 2 - 1                           # a VAE decode: [-1, 1]

    def tearDown(self):
        self.tmp.cleanup()

    def test_range_is_required(self):
        for fn in (latup.to_uint8, latup.to_unit):
            with self.assertRaises(TypeError) as e:
                fn(self.unit)
            self.assertIn('range="[0,1]"', str(e.exception))
            self.assertIn('range="[-1,1]"', str(e.exception))
            with self.assertRaises(ValueError):
                fn(self.unit, range="0..1")
        with self.assertRaises(TypeError):
            latup.write_png(os.path.join(self.tmp.name, "x.png"), self.unit)
        self.assertFalse(os.listdir(self.tmp.name))

    def test_unit_range_keeps_the_mean(self):
        """The issue: a [0,1] image read as [-1,1] comes out washed out (mean 191, not 127)."""
        u8 = latup.to_uint8(self.unit, range="[0,1]")
        self.assertEqual((u8.shape, u8.dtype), ((20, 24, 3), np.uint8))
        self.assertAlmostEqual(float(u8.mean()), float(self.unit.mean()) * 255, delta=0.5)
        self.assertGreater(float(latup.to_uint8(self.unit, range="[-1,1]").mean()), 180)  # the old default
        self.assertTrue(np.array_equal(latup.to_uint8(self.signed, range="[-1,1]"),
                                       np.round(np.clip(self.signed.transpose(1, 2, 0) * np.float32(0.5)
                                                        + np.float32(0.5), 0, 1) * np.float32(255)).astype(np.uint8)))
        np.testing.assert_allclose(latup.to_unit(self.signed, range="[-1,1]"), self.unit.transpose(1, 2, 0), atol=1e-6)
        with self.assertRaises(ValueError):
            latup.to_uint8(np.zeros((4, 8, 8), np.float32), range="[0,1]")  # not RGB

    def test_write_png_is_to_uint8(self):
        for rng_name, img in (("[0,1]", self.unit), ("[-1,1]", self.signed)):
            path = os.path.join(self.tmp.name, "8.png")
            latup.write_png(path, img, range=rng_name)
            depth, px = read_png(path)
            self.assertEqual(depth, 8)
            self.assertTrue(np.array_equal(px, latup.to_uint8(img, range=rng_name)), rng_name)
            # and the library's own reader agrees
            self.assertTrue(np.array_equal(np.round(latup.read(path) * 255).astype(np.int64), px.transpose(2, 0, 1)))
        path = os.path.join(self.tmp.name, "16.png")
        latup.write_png(path, self.unit[None], range="[0,1]", bits=16)
        depth, px = read_png(path)
        self.assertEqual(depth, 16)
        self.assertLessEqual(np.abs(px / 65535.0 - self.unit.transpose(1, 2, 0)).max(), 0.5 / 65535 + 1e-7)

    def test_write_png_refuses(self):
        bad = self.unit.copy()
        bad[1, 2, 3] = np.nan
        path = os.path.join(self.tmp.name, "nan.png")
        with self.assertRaises(latup.LatupInputError) as e:
            latup.write_png(path, bad, range="[0,1]")
        self.assertIn("NaN", str(e.exception))
        self.assertEqual(os.listdir(self.tmp.name), [])  # nothing written, no temporary left
        with self.assertRaises(ValueError):
            latup.write_png(path, self.unit, range="[0,1]", bits=12)
        with self.assertRaises(FileNotFoundError):
            latup.write_png(os.path.join(self.tmp.name, "no", "dir.png"), self.unit, range="[0,1]")


@unittest.skipIf(torch is None, "torch is not installed: the package's torch path is not exercised")
class TestTorch(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lua = latup.Lua(LUA, threads=2)
        cls.vae = latup.Vae(VAE, threads=2)
        cls.z = np.load(LATENT)

    def test_torch_in_torch_out(self):
        want = self.lua.upscale(self.z, 2)
        self.assertIsInstance(want, np.ndarray)  # numpy stays numpy
        got = self.lua.upscale(torch.from_numpy(self.z.copy()), 2)
        self.assertIsInstance(got, torch.Tensor)
        self.assertEqual(got.dtype, torch.float32)
        self.assertTrue(np.array_equal(got.numpy(), want))
        # a tensor that requires grad, and bfloat16 (numpy has no such dtype), are converted
        g = torch.from_numpy(self.z.copy()).requires_grad_()
        self.assertTrue(np.array_equal(self.lua.upscale(g, 2).numpy(), want))
        b = torch.from_numpy(self.z.copy()).to(torch.bfloat16)
        self.assertTrue(np.array_equal(self.lua.upscale(b, 2).numpy(), self.lua.upscale(b.float().numpy(), 2)))
        img = self.vae.decode(torch.from_numpy(self.z.copy()))
        self.assertIsInstance(img, torch.Tensor)
        self.assertIsInstance(latup.upscale_decode(self.lua, self.vae, torch.from_numpy(self.z.copy())), torch.Tensor)
        u8 = latup.to_uint8(img, range="[-1,1]")
        self.assertEqual(u8.dtype, torch.uint8)
        self.assertTrue(np.array_equal(u8.numpy(), latup.to_uint8(img.numpy(), range="[-1,1]")))
        self.assertIsInstance(latup.to_unit(img, range="[-1,1]"), torch.Tensor)
        fz = torch.zeros(1, 16, 8, 8)
        self.assertIsInstance(latup.to_vae_space(fz, "flux"), torch.Tensor)
        self.assertIsInstance(latup.flux_unpack(torch.zeros(1, 16, 64), 8, 8), torch.Tensor)

    def test_no_torch_import(self):
        """The package never imports torch itself: numpy users do not pay for it."""
        code = ("import numpy as np, sys, latup\n"
                "latup.to_uint8(np.zeros((3, 2, 2), np.float32), range='[0,1]')\n"
                "print('torch' in sys.modules)")
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
        self.assertEqual(out.strip(), "False")


class TestExceptions(unittest.TestCase):
    """Each status raises a LatupError subclass that is also the built-in type that fits."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def test_missing_file(self):
        path = os.path.join(self.tmp.name, "missing.pth")
        for load in (latup.Lua, latup.Vae, latup.read):
            with self.assertRaises(FileNotFoundError) as e:
                load(path)
            x = e.exception
            self.assertIsInstance(x, latup.LatupError)
            self.assertIsInstance(x, latup.LatupIOError)
            self.assertEqual((x.status, x.errno, x.filename), (latup.E_IO, errno.ENOENT, path))
            self.assertTrue(str(x).startswith(path + ": "), str(x))  # the library's line, no "[Errno 2]"

    def test_directory(self):
        # (not Vae: a folder is a diffusers VAE folder to it, once issue 21's reader is merged)
        for load in (latup.Lua, latup.read):
            with self.assertRaises(IsADirectoryError) as e:
                load(self.tmp.name)
            self.assertEqual((e.exception.status, e.exception.errno), (latup.E_IO, errno.EISDIR))

    def test_bad_data_and_arguments(self):
        lua = latup.Lua(LUA)
        with self.assertRaises(ValueError) as e:
            lua.upscale(np.zeros((4, 16, 16), np.float32), 2)
        self.assertIsInstance(e.exception, latup.LatupInputError)
        self.assertEqual(e.exception.status, latup.E_INPUT)
        self.assertIn("4 channels, the model expects 16", str(e.exception))
        with self.assertRaises(ValueError) as e:
            lua.upscale(np.load(LATENT), 3)
        self.assertIsInstance(e.exception, latup.LatupUsageError)
        self.assertEqual(e.exception.status, latup.E_USAGE)
        bad = os.path.join(self.tmp.name, "bad.npy")
        with open(bad, "wb") as f:
            f.write(b"not a latent")
        with self.assertRaises(latup.LatupInputError) as e:
            latup.read(bad)
        self.assertEqual(e.exception.filename, bad)

    def test_memory(self):
        with self.assertRaises(MemoryError) as e:
            latup.Vae(VAE, max_memory="1K").decode(np.load(LATENT))
        self.assertIsInstance(e.exception, latup.LatupMemoryError)
        self.assertEqual(e.exception.status, latup.E_NOMEM)
        self.assertIn("cannot be met", str(e.exception))

    def test_pickles(self):
        e = latup._error(latup.E_IO, "m.pth: cannot open: " + os.strerror(errno.ENOENT), b"m.pth")
        self.assertIsInstance(e, FileNotFoundError)
        f = pickle.loads(pickle.dumps(e))
        self.assertEqual((type(f), f.status, str(f), f.errno, f.filename),
                         (type(e), e.status, str(e), errno.ENOENT, "m.pth"))
        self.assertIsInstance(latup._error(latup.E_DEVICE, "no CUDA"), RuntimeError)
        self.assertIsInstance(latup._error(latup.E_CANCELLED, "cancelled"), latup.LatupCancelledError)
        self.assertIs(type(latup._error(latup.E_IO, "x: cannot write: " + os.strerror(errno.ENOSPC))),
                      latup.LatupIOError)


class TestLibraryNotFound(unittest.TestCase):
    def run_import(self, env):
        return subprocess.run([sys.executable, "-c", "import latup"], env=env, capture_output=True, text=True)

    def test_latup_library_wrong(self):
        env = dict(os.environ, LATUP_LIBRARY="/nonexistent/liblatup.so")
        r = self.run_import(env)
        self.assertNotEqual(r.returncode, 0)
        last = r.stderr.strip().splitlines()[-1]
        self.assertTrue(last.startswith("ImportError: latup: cannot load liblatup"), last)
        for words in ("make install", "LATUP_LIBRARY", "/nonexistent/liblatup.so"):
            self.assertIn(words, last)

    def test_lookup_order(self):
        """Outside a source tree, with nothing installed: each place tried is named, in order."""
        with tempfile.TemporaryDirectory() as d:
            pkg = os.path.join(d, "lib", "python3", "site-packages")
            os.makedirs(pkg)
            os.symlink(os.path.dirname(latup.__file__), os.path.join(pkg, "latup"))
            env = {k: v for k, v in os.environ.items() if k not in ("LATUP_LIBRARY", "LD_LIBRARY_PATH")}
            env["PYTHONPATH"] = pkg
            r = self.run_import(env)
            if r.returncode == 0:
                self.skipTest("a liblatup.so.0 is installed on this system: the not-found message cannot be shown")
            last = r.stderr.strip().splitlines()[-1]
            order = [last.find(w) for w in ("the source tree's build/", "the prefix this package is installed in",
                                            "the system's library search")]
            self.assertTrue(all(i > 0 for i in order) and order == sorted(order), last)
            self.assertIn(os.path.join(d, "lib", "liblatup.so.0"), last)
            self.assertIn("make install", last)


@unittest.skipUnless(latup.PROGRESS, NO_PROGRESS)
class TestProgress(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lua = latup.Lua(LUA, threads=2)
        cls.vae = latup.Vae(VAE, threads=2)
        cls.z = np.load(LATENT)

    def check_steps(self, steps):
        self.assertTrue(steps, "the callback was called")
        total = steps[0][1]
        self.assertTrue(all(t == total for _, t in steps), steps)
        done = [d for d, _ in steps]
        self.assertEqual(done, sorted(done))
        self.assertEqual(done[-1], total)
        return total

    def test_reports(self):
        up, dec, run = [], [], []
        want = self.lua.upscale(self.z, 2)
        self.assertTrue(np.array_equal(self.lua.upscale(self.z, 2, progress=lambda d, t: up.append((d, t))), want))
        self.vae.decode(self.z, progress=lambda d, t: dec.append((d, t)))
        latup.upscale_decode(self.lua, self.vae, self.z, progress=lambda d, t: run.append((d, t)))
        self.check_steps(up)
        self.check_steps(dec)
        self.assertGreater(self.check_steps(run), self.check_steps(up))  # both stages counted together

    def test_exception_cancels(self):
        class Stop(Exception):
            pass

        calls = []

        def stop(done, total):
            calls.append(done)
            if len(calls) == 2:
                raise Stop("enough")

        for call in (lambda: self.lua.upscale(self.z, 2, progress=stop),
                     lambda: self.vae.decode(self.z, progress=stop),
                     lambda: latup.upscale_decode(self.lua, self.vae, self.z, progress=stop)):
            calls.clear()
            with self.assertRaises(Stop):
                call()
            self.assertEqual(len(calls), 2, "not called again once it raised")

        def interrupt(done, total):
            raise KeyboardInterrupt

        with self.assertRaises(KeyboardInterrupt):
            self.lua.upscale(self.z, 2, progress=interrupt)
        self.assertTrue(np.array_equal(self.lua.upscale(self.z, 2), self.lua.upscale(self.z, 2)))  # still usable

    def test_not_callable(self):
        with self.assertRaises(TypeError):
            self.lua.upscale(self.z, 2, progress=3)


class TestProgressAbsent(unittest.TestCase):
    @unittest.skipIf(latup.PROGRESS, "this liblatup has the progress callback")
    def test_refused_with_reason(self):
        with self.assertRaises(latup.LatupUsageError) as e:
            latup.Lua(LUA).upscale(np.load(LATENT), 2, progress=lambda d, t: None)
        self.assertIn("no progress callback", str(e.exception))


if __name__ == "__main__":
    unittest.main()
