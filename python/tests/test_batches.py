"""test_batches.py — batches through the Python API (issue 24): a batch of 2 and of 3 whose
elements all differ, through Lua.upscale (x2, x4), Vae.decode (exact and tiled), Vae.encode (exact
and tiled, the posterior's mean) and upscale_decode: each element of the batch's result must equal
the same element run alone ([C,H,W], no batch axis), bit for bit, as the library runs the elements
one after another through the same code (tests/test_batches.c checks the C API and the CLI the same
way). Each result's elements are also checked to differ from element 0, so a result that repeated
one element could not pass. One line per compared array. Run by `make test-python`."""
import os
import unittest

import numpy as np

import latup

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LUA = os.path.join(ROOT, "ref_data/small/model.safetensors.gz")         # 16 channels, heads x2 and x4
VAE = os.path.join(ROOT, "ref_data/vae/flux_small.ldm.safetensors.gz")  # 16 channels, factor 2, decoder + encoder


def batch(n, shape, seed, image=False):
    """n elements of `shape`, each with its own seed, scale and offset (float32, C order)."""
    out = []
    for b in range(n):
        rng = np.random.default_rng(seed + 1000 * n + 17 * b)
        if image:
            out.append(rng.uniform(-1.0 + 0.1 * b, 1.0 - 0.2 * b, shape))
        else:
            out.append(0.1 * b + (1.0 + 0.25 * b) * rng.standard_normal(shape))
    return np.ascontiguousarray(np.stack(out), dtype=np.float32)


class TestBatches(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lua = latup.Lua(LUA, threads=2)
        cls.vae = latup.Vae(VAE, threads=2, max_memory=0)  # decoder and encoder; no budget: exact unless tiled
        cls.tiled = latup.Vae(VAE, threads=2, max_memory=0, tile=6, overlap=2)

    @classmethod
    def tearDownClass(cls):
        cls.lua.close()
        cls.vae.close()
        cls.tiled.close()

    def check(self, what, fn, shape, seed, image=False):
        for n in (2, 3):
            x = batch(n, shape, seed, image)
            y = fn(x)
            self.assertEqual(y.shape[0], n)
            for b in range(n):
                alone = fn(x[b].copy())  # its own buffer, no batch axis
                self.assertEqual(alone.shape, y.shape[1:])
                diff = float(np.max(np.abs(y[b].astype(np.float64) - alone))) if alone.size else 0.0
                same = np.array_equal(y[b], alone)
                print("%-34s batch %d element %d vs alone: max|diff| = %.3g %s" % (what, n, b, diff,
                                                                                   "OK" if same else "NOT OK"))
                self.assertTrue(same, "%s: batch %d element %d differs from the element alone" % (what, n, b))
            distinct = all(not np.array_equal(y[b], y[0]) for b in range(1, n))
            print("%-34s batch %d: every element differs from element 0 %s" % (what, n, "OK" if distinct else "NOT OK"))
            self.assertTrue(distinct)

    def test_upscale(self):
        for scale in (2, 4):
            self.check("upscale x%d" % scale, lambda x: self.lua.upscale(x, scale), (16, 12, 10), 1)

    def test_decode(self):
        self.check("decode exact", self.vae.decode, (16, 10, 14), 2)
        self.check("decode tiled (6, overlap 2)", self.tiled.decode, (16, 10, 14), 3)
        self.assertTrue(self.tiled.plan((2, 16, 10, 14))["decode"]["tiled"])

    @unittest.skipUnless(latup.ENCODER, "this liblatup has no VAE encoder")
    def test_encode(self):
        self.assertTrue(self.vae.has_encoder)
        self.check("encode exact", lambda x: self.vae.encode(x, range="[-1,1]"), (3, 20, 28), 4, image=True)
        self.check("encode tiled (4, overlap 1)", lambda x: self.vae.encode(x, range="[-1,1]", tile=4, overlap=1),
                   (3, 20, 28), 5, image=True)
        self.assertTrue(self.vae.plan_encode((2, 3, 20, 28), tile=4, overlap=1)["tiled"])

    def test_upscale_decode(self):
        self.check("upscale_decode x2", lambda x: latup.upscale_decode(self.lua, self.vae, x, 2), (16, 10, 12), 6)
        self.check("upscale_decode x2, tiled decode", lambda x: latup.upscale_decode(self.lua, self.tiled, x, 2),
                   (16, 10, 12), 7)


if __name__ == "__main__":
    unittest.main()
