"""test_encode.py — Vae.encode (issue 22) against numpy: the trained demo VAE's patch encoder (one
8x8 stride-8 convolution, ref_data/trained/vae.ldm.safetensors.gz) computed here from its committed
F32 weights, the posterior sample's formula, the round trip decode(encode(x)) on demo_gt.png against
the Python evaluation's figure, the range and shape checks, the parts of a Vae, torch in and out,
progress and cancel, from_vae_space. Run by `make test-python`; the tests that need the library's
encoder skip, saying so, with a library built without it."""
import json
import os
import tempfile
import unittest

import numpy as np

import latup

from .test_comfyui import safetensors_gz, safetensors_read, write_without_encoder

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TRAINED = os.path.join(ROOT, "ref_data/trained/vae.ldm.safetensors.gz")  # F16 decoder + F32 patch encoder
GT = os.path.join(ROOT, "ref_data/trained/demo_gt.png")                  # the astronaut, 512x512

# The Python evaluation's VAE reconstruction of the astronaut (tools/train/evaluate.py, build/eval/
# results.json: "vae_ceiling", PSNR of the 8-bit decode of the 512x512 ground truth's latent;
# docs/results.md's table rounds it to 27.23). The issue asks for the same figure to 0.01 dB.
ROUND_TRIP_PSNR = 27.230565488125997

# |latup - numpy float64| of the patch encoder's mean: measured at most 6.0e-6 over 10 random 2x3x40x56 images
# (max |mean| 9.0, so 6.6e-7 of it; float32 sums of 192 products), bound 3x that
CONV_TOL = 2e-5

NO_ENCODER_API = ("this liblatup has no VAE encoder (latup_vae_encode): the encode tests run once the C side "
                  "of issue 22 is merged")

try:
    import torch
except ImportError:
    torch = None


def psnr_u8(a, b):
    """tools/train/metrics.py's psnr: over all samples of two uint8 images."""
    d = a.astype(np.float64) - b.astype(np.float64)
    return 10 * np.log10(255.0 ** 2 / np.mean(d * d))


def patch_encode(w, b, x):
    """The patch encoder in float64: x [B,3,H,W] in [-1,1] -> (mean, logvar), each [B,zc,H//p,W//p]:
    y[o,i,j] = b[o] + sum_{c,u,v} w[o,c,u,v] x[c, p*i+u, p*j+v], its first zc channels the mean."""
    p = w.shape[-1]
    B, _, H, W = x.shape
    h, ww = H // p, W // p
    patches = x[:, :, :h * p, :ww * p].astype(np.float64).reshape(B, 3, h, p, ww, p)
    y = np.einsum("bcipjq,ocpq->boij", patches, w.astype(np.float64)) + b.astype(np.float64)[None, :, None, None]
    zc = w.shape[0] // 2
    return y[:, :zc], y[:, zc:]


class TestWithoutEncoderApi(unittest.TestCase):
    @unittest.skipIf(latup.ENCODER, "this liblatup has the encoder")
    def test_refused_with_reason(self):
        with latup.Vae(TRAINED) as v:
            self.assertFalse(v.has_encoder)
            with self.assertRaises(latup.LatupUsageError) as e:
                v.encode(np.zeros((3, 8, 8), np.float32), range="[0,1]")
            self.assertIn("no VAE encoder", str(e.exception))
        with self.assertRaises(latup.LatupUsageError):
            latup.Vae(TRAINED, parts="encoder")


@unittest.skipUnless(latup.ENCODER, NO_ENCODER_API)
class TestEncode(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.no_encoder = os.path.join(cls.tmp.name, "decoder_only.safetensors")  # TRAINED's decoder alone
        write_without_encoder(TRAINED, cls.no_encoder)
        cls.vae = latup.Vae(TRAINED, threads=2)
        sd = safetensors_gz(TRAINED)
        cls.w, cls.b = sd["encoder.weight"], sd["encoder.bias"]
        rng = np.random.default_rng(22)
        cls.x = rng.uniform(-1, 1, (2, 3, 40, 56)).astype(np.float32)

    @classmethod
    def tearDownClass(cls):
        cls.vae.close()
        cls.tmp.cleanup()

    def test_info(self):
        v = self.vae
        self.assertEqual((v.has_decoder, v.has_encoder, v.encoder, v.downsampling, v.upsampling),
                         (True, True, "patch", 8, 8))
        self.assertEqual((v.latent_channels, v.encoder_params, v.has_quant_conv), (16, 32 * 3 * 8 * 8 + 32, False))

    def test_patch_conv(self):
        """The mean against the float64 convolution, also for sides that are not multiples of 8 (the
        last H % 8 rows and W % 8 columns take no part) and a single image [3,H,W]."""
        z = self.vae.encode(self.x, range="[-1,1]")
        mean, _ = patch_encode(self.w, self.b, self.x)
        self.assertEqual((z.dtype, z.shape), (np.float32, (2, 16, 5, 7)))
        err = float(np.abs(z - mean).max())
        print("\n  patch encoder mean [2,16,5,7]: max |latup - numpy float64| %.3g (bound %g)" % (err, CONV_TOL))
        self.assertLessEqual(err, CONV_TOL)
        odd = self.x[0, :, :37, :50]  # 4 x 6 latent
        z1 = self.vae.encode(odd, range="[-1,1]")
        self.assertEqual(z1.shape, (16, 4, 6))
        self.assertLessEqual(float(np.abs(z1 - patch_encode(self.w, self.b, odd[None])[0][0]).max()), CONV_TOL)

    def test_unit_range(self):
        """range="[0,1]" is 2x - 1 of the same pixels: the same latent, bit for bit."""
        u = (self.x + 1) / 2
        self.assertTrue(np.array_equal(self.vae.encode(u, range="[0,1]"),
                                       self.vae.encode(u * np.float32(2) - np.float32(1), range="[-1,1]")))

    def test_sample(self):
        """sample=True: mean + exp(logvar / 2) * eps, logvar clamped to [-30, 20], eps standard normal
        from the seed: the same seed the same draw, another seed another."""
        mean, logvar = patch_encode(self.w, self.b, self.x)
        s1 = self.vae.encode(self.x, range="[-1,1]", sample=True, seed=7)
        self.assertTrue(np.array_equal(s1, self.vae.encode(self.x, range="[-1,1]", sample=True, seed=7)))
        s2 = self.vae.encode(self.x, range="[-1,1]", sample=True, seed=8)
        self.assertFalse(np.array_equal(s1, s2))
        eps = (s1 - mean) / np.exp(np.clip(logvar, -30, 20) / 2)
        self.assertLess(abs(float(eps.mean())), 0.1, "eps: mean %g over %d draws" % (eps.mean(), eps.size))
        self.assertLess(abs(float(eps.std()) - 1), 0.1, "eps: std %g over %d draws" % (eps.std(), eps.size))
        for bad in (1, "yes", None):
            with self.assertRaises(TypeError):
                self.vae.encode(self.x, range="[-1,1]", sample=bad)
        for bad in (-1, 1 << 64):
            with self.assertRaises(ValueError):
                self.vae.encode(self.x, range="[-1,1]", sample=True, seed=bad)

    def test_round_trip_psnr(self):
        """decode(encode(demo_gt.png)): the VAE reconstruction of the Python evaluation (27.23 dB)."""
        img = latup.read(GT)  # [3,512,512] in [0,1]
        z = self.vae.encode(img, range="[0,1]")
        self.assertEqual(z.shape, (16, 64, 64))
        rec = latup.to_uint8(self.vae.decode(z), range="[-1,1]")
        gt = latup.to_uint8(img, range="[0,1]")
        got = psnr_u8(rec, gt)
        print("\n  round trip of demo_gt.png 512x512: %.4f dB (Python evaluation %.4f)" % (got, ROUND_TRIP_PSNR))
        self.assertLess(abs(got - ROUND_TRIP_PSNR), 0.01)

    def test_tiled(self):
        """Tiles (forced, or over max_memory) of the patch encoder, whose latents do not depend on their
        neighbours: the exact latent, up to the blend's rounding. plan_encode says what encode does."""
        exact = self.vae.encode(self.x, range="[-1,1]")
        plan = self.vae.plan_encode(self.x.shape, tile=4, overlap=1)
        self.assertTrue(plan["tiled"], plan)
        self.assertEqual((plan["tile"], plan["overlap"]), (4, 1))
        tiled = self.vae.encode(self.x, range="[-1,1]", tile=4, overlap=1)
        self.assertLessEqual(float(np.abs(tiled - exact).max()), CONV_TOL)
        p0 = self.vae.plan_encode(self.x.shape)
        self.assertFalse(p0["tiled"], p0)
        self.assertEqual((p0["h"], p0["w"]), (5, 7))
        with self.assertRaises(MemoryError) as e:
            self.vae.encode(self.x, range="[-1,1]", max_memory="1K")
        self.assertIsInstance(e.exception, latup.LatupMemoryError)

    def test_range_checked(self):
        v = self.vae
        with self.assertRaises(TypeError) as e:
            v.encode(self.x)
        self.assertIn('range="[-1,1]"', str(e.exception))
        with self.assertRaises(ValueError):
            v.encode(self.x, range="0..1")
        with self.assertRaises(ValueError) as e:  # a [-1,1] image called [0,1]
            v.encode(self.x, range="[0,1]")
        self.assertIn('range="[-1,1]"', str(e.exception))
        with self.assertRaises(ValueError) as e:
            v.encode(self.x * 2, range="[-1,1]")
        self.assertIn("outside", str(e.exception))
        bad = self.x.copy()
        bad[0, 1, 2, 3] = np.nan
        with self.assertRaises(ValueError) as e:
            v.encode(bad, range="[-1,1]")
        self.assertIn("nan", str(e.exception))

    def test_shape_checked(self):
        for shape in ((4, 16, 16), (1, 4, 16, 16), (16, 16), (1, 1, 3, 16, 16)):
            with self.assertRaises(ValueError, msg=str(shape)):
                self.vae.encode(np.zeros(shape, np.float32), range="[0,1]")
        with self.assertRaises(ValueError):
            self.vae.plan_encode((4, 16, 16))

    def test_arguments_checked_before_c(self):
        """The per-call integers go through the package's checks (test_hostile.py's rules): nothing
        wraps on its way to C (2**32 + 8 as a C int is 8), bool and float are refused; None is the
        model's attribute, which is checked again at the call."""
        v, x = self.vae, self.x

        def refused(exc, name, **kw):
            with self.assertRaisesRegex(exc, "^%s: " % name):
                v.encode(x, range="[-1,1]", **kw)

        for name, bad in (("tile", 2**32 + 8), ("tile", 3), ("overlap", 2**32 + 2), ("threads", 4097),
                          ("max_memory", -1), ("max_memory", "1e9"), ("seed", 2**64), ("seed", -1)):
            refused(ValueError, name, **{name: bad, "tile": 8} if name == "overlap" else {name: bad})
        for name, bad in (("tile", 8.0), ("threads", True), ("max_memory", 1.5e9), ("seed", 1.0), ("sample", 0)):
            refused(TypeError, name, **{name: bad})
        refused(ValueError, "overlap", tile=8, overlap=8)
        with latup.Vae(TRAINED, threads=2) as w:
            w.tile = 2**32 + 8
            with self.assertRaisesRegex(ValueError, "^tile: "):
                w.encode(x, range="[-1,1]")
            self.assertTrue(np.array_equal(w.encode(x, range="[-1,1]", tile=0), v.encode(x, range="[-1,1]")))
        with self.assertRaisesRegex(ValueError, "^shape"):
            v.plan_encode((3, 2**31, 8))

    def test_parts(self):
        with latup.Vae(TRAINED, parts="encoder") as enc:
            self.assertEqual((enc.has_decoder, enc.has_encoder, enc.upsampling, enc.n_params), (False, True, None, 0))
            self.assertTrue(np.array_equal(enc.encode(self.x, range="[-1,1]"), self.vae.encode(self.x, range="[-1,1]")))
            with self.assertRaises(ValueError) as e:  # no decoder loaded
                enc.decode(np.zeros((16, 4, 4), np.float32))
            self.assertIsInstance(e.exception, latup.LatupError)
        with latup.Vae(TRAINED, parts="decoder") as dec:
            self.assertEqual((dec.has_decoder, dec.has_encoder, dec.encoder, dec.downsampling),
                             (True, False, "none", None))
            with self.assertRaises(ValueError) as e:
                dec.encode(self.x, range="[-1,1]")
            self.assertIsInstance(e.exception, latup.LatupError)
        with latup.Vae(TRAINED, parts=("decoder", "encoder")) as both:
            self.assertTrue(both.has_decoder and both.has_encoder)
        for bad, exc in ((3, TypeError), ("decoders", ValueError), ((), ValueError), (("encoder", 2), ValueError)):
            with self.assertRaises(exc, msg=repr(bad)):
                latup.Vae(TRAINED, parts=bad)

    def test_no_encoder(self):
        """A file without encoder tensors: loaded as a decoder (has_encoder False), encode refused;
        parts="encoder" refused at the load, naming the tensor."""
        with latup.Vae(self.no_encoder) as v:
            self.assertFalse(v.has_encoder)
            with self.assertRaises(ValueError) as e:
                v.encode(self.x, range="[-1,1]")
            self.assertIsInstance(e.exception, latup.LatupError)
        with self.assertRaises(latup.LatupInputError) as e:
            latup.Vae(self.no_encoder, parts="encoder")
        self.assertIn("no VAE encoder", str(e.exception))
        self.assertEqual(e.exception.filename, self.no_encoder)

    @unittest.skipUnless(latup.PROGRESS, "this liblatup has no progress callback")
    def test_progress_and_cancel(self):
        steps = []
        want = self.vae.encode(self.x, range="[-1,1]", tile=4, overlap=1)
        got = self.vae.encode(self.x, range="[-1,1]", tile=4, overlap=1, progress=lambda d, t: steps.append((d, t)))
        self.assertTrue(np.array_equal(got, want))
        self.assertTrue(steps)
        total = steps[0][1]
        self.assertEqual([d for d, _ in steps], sorted(d for d, _ in steps))
        self.assertEqual(steps[-1], (total, total))

        class Stop(Exception):
            pass

        calls = []

        def stop(done, total):
            calls.append(done)
            raise Stop("enough")

        with self.assertRaises(Stop):
            self.vae.encode(self.x, range="[-1,1]", tile=4, overlap=1, progress=stop)
        self.assertEqual(len(calls), 1, "not called again once it raised")
        with self.assertRaises(TypeError):
            self.vae.encode(self.x, range="[-1,1]", progress=3)
        self.assertTrue(np.array_equal(self.vae.encode(self.x, range="[-1,1]", tile=4, overlap=1), want))  # usable

    @unittest.skipIf(torch is None, "torch is not installed: the package's torch path is not exercised")
    def test_torch(self):
        want = self.vae.encode(self.x, range="[-1,1]")
        got = self.vae.encode(torch.from_numpy(self.x.copy()), range="[-1,1]")
        self.assertIsInstance(got, torch.Tensor)
        self.assertEqual(got.dtype, torch.float32)
        self.assertTrue(np.array_equal(got.numpy(), want))
        u = torch.from_numpy((self.x + 1) / 2).to(torch.bfloat16)
        self.assertTrue(np.array_equal(self.vae.encode(u, range="[0,1]").numpy(),
                                       self.vae.encode(u.float().numpy(), range="[0,1]")))
        self.assertIsInstance(latup.from_vae_space(got, "flux"), torch.Tensor)


# The deep (ldm) encoder against diffusers' AutoencoderKL: |latup - ref| / max |ref| of the mean,
# measured 1.35e-6 (flux_small) and 1.05e-6 (sd_small, quant_conv) in every naming; bound 7x that
LDM_TOL = 1e-5


@unittest.skipUnless(latup.ENCODER, NO_ENCODER_API)
class TestEncodeLdm(unittest.TestCase):
    def test_golden(self):
        """The golden encodes of ref_data/vae (tools/golden/make_vae_golden.py, diffusers 0.31): every
        file of each case, loaded with parts="encoder", gives the posterior mean of the golden input."""
        for case in ("flux_small", "sd_small"):
            g, meta = safetensors_read(os.path.join(ROOT, "ref_data/vae/golden_enc_%s.safetensors" % case))
            ref = g["mean"]
            for naming, name in sorted(json.loads(meta["weights"]).items()):
                with latup.Vae(os.path.join(ROOT, "ref_data/vae", name), parts="encoder", threads=2) as v:
                    self.assertEqual((v.encoder, v.has_quant_conv, v.downsampling), ("ldm", case == "sd_small", 2))
                    z = v.encode(g["input"], range="[-1,1]")
                err = float(np.abs(z - ref).max() / np.abs(ref).max())
                print("\n  %s %s: mean %s, max |latup - diffusers| / max |ref| %.3g (bound %g)"
                      % (case, naming, list(z.shape), err, LDM_TOL), end="")
                self.assertLessEqual(err, LDM_TOL, "%s %s" % (case, naming))


@unittest.skipUnless(latup.ENCODER, NO_ENCODER_API)
class TestFromVaeSpace(unittest.TestCase):
    def test_refused(self):
        """(The formula and the round trip with to_vae_space: test_bindings.TestLatents.)"""
        with self.assertRaises(ValueError):
            latup.from_vae_space(np.zeros((4, 8, 8), np.float32), "flux")
        with self.assertRaises(ValueError):
            latup.from_vae_space(np.zeros((16, 8, 8), np.float32), "sd2")
        with self.assertRaises(TypeError):
            latup.from_vae_space(np.zeros((16, 8, 8), np.float32), 0.3611)

    def test_vae_family(self):
        with latup.Vae(TRAINED) as v, self.assertRaises(ValueError) as e:
            latup.from_vae_space(np.zeros((16, 4, 4), np.float32), v)
        self.assertIn("not loaded from a diffusers folder", str(e.exception))


if __name__ == "__main__":
    unittest.main()
