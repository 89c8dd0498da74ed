"""test_latup.py — the Python package against the CLI and the C headers: upscale and decode give
the CLI's bytes, a ComfyUI .latent reads as its .npy twin, errors carry the library's message and
status, inputs are not copied and outputs are views of the library's buffers, threads and the
memory budget are honoured, and every ctypes mirror matches include/latup.h (a C compiler prints
the real offsets). Run by `make test-python` (Debian's python3-numpy)."""
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

import latup

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LUA = os.path.join(ROOT, "ref_data/small/model.safetensors.gz")
VAE = os.path.join(ROOT, "ref_data/vae/flux_small.ldm.safetensors.gz")
LATENT = os.path.join(ROOT, "ref_data/demo/latent.npy")
BIN = os.environ.get("LATUP_BIN", os.path.join(ROOT, "build/latup"))


def cli(*args):
    subprocess.run([BIN, *args, "-q"], check=True)


class TestAgainstCli(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.lua = latup.Lua(LUA, threads=2)
        cls.vae = latup.Vae(VAE, parts="decoder", threads=2)  # as the CLI's decode and run load it

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def test_upscale_is_the_cli(self):
        cli("upscale", "-m", LUA, "-s", "2", "-i", LATENT, "-o", self.path("up.npy"))
        y = self.lua.upscale(np.load(LATENT), 2)
        self.assertEqual(y.dtype, np.float32)
        self.assertEqual(y.shape, (16, 48, 80))
        self.assertTrue(np.array_equal(y, np.load(self.path("up.npy"))))

    def test_decode_is_the_cli(self):
        z = np.load(os.path.join(ROOT, "tests/data/latent/comfyui_flux_b2.npy"))
        cli("decode", "--vae", VAE, "-i", os.path.join(ROOT, "tests/data/latent/comfyui_flux_b2.npy"), "-o",
            self.path("img.npy"))
        img = self.vae.decode(z)
        self.assertEqual(img.shape, (2, 3, 24, 20))
        self.assertTrue(np.array_equal(img, np.load(self.path("img.npy"))))
        # and the PNG mapping is diffusers' numpy_to_pil: the CLI's PNG holds to_uint8's bytes
        u8 = latup.to_uint8(img, range="[-1,1]")
        self.assertEqual(u8.shape, (2, 24, 20, 3))
        self.assertEqual(u8.dtype, np.uint8)

    def test_run_and_plan_are_the_cli(self):
        """upscale_decode is `latup run`, and its plan is the dry run's, field for field."""
        cli("run", "-m", LUA, "-s", "2", "--vae", VAE, "-i", LATENT, "-o", self.path("run.npy"), "-t", "2")
        img = latup.upscale_decode(self.lua, self.vae, np.load(LATENT), 2)
        self.assertTrue(np.array_equal(img, np.load(self.path("run.npy"))))
        plan = latup.plan_upscale_decode(self.lua, self.vae, (16, 24, 40), 2)
        out = subprocess.run([BIN, "run", "-m", LUA, "-s", "2", "--vae", VAE, "-i", LATENT, "-o", self.path("x.png"),
                              "-t", "2", "--dry-run", "--json", "--max-memory", str(self.vae.max_memory)],
                             check=True, capture_output=True, text=True).stdout
        item = json.loads(out)["items"][0]
        self.assertEqual(plan["memory"], item["memory"])
        self.assertEqual(plan["output_shape"], (3, 96, 160))
        self.assertEqual(plan["decode"]["tiled"], item["decode"]["tiled"])
        m = plan["memory"]
        self.assertEqual(m["peak"], max(m["process"] + m["weights"] + m["input"] + m["upscaled"] + m["upscale_arena"],
                                        m["process"] + m["weights"] + m["input"] + m["upscaled"] + m["image"]
                                        + m["decode_arena"]))
        # a budget under the plan's peak tiles the decode, one nothing fits is refused before any work
        exact = self.vae.plan((16, 48, 80))["memory"]["peak"]
        p = latup.Vae(VAE, parts="decoder", max_memory=exact - 1, threads=2).plan((16, 48, 80))
        self.assertTrue(p["decode"]["tiled"])
        self.assertLessEqual(p["memory"]["peak"], exact - 1)
        with self.assertRaises(latup.LatupError) as e:
            self.lua.plan((16, 24), 2)
        self.assertEqual(e.exception.status, latup.E_INPUT)

    def test_comfyui_latent_reads_as_npy(self):
        a = latup.read(os.path.join(ROOT, "tests/data/latent/comfyui_flux_b2.latent"))
        b = np.load(os.path.join(ROOT, "tests/data/latent/comfyui_flux_b2.npy"))
        self.assertTrue(np.array_equal(a, b))
        self.assertTrue(np.array_equal(self.vae.decode(a), self.vae.decode(b)))

    def test_no_copies(self):
        x = np.load(LATENT)
        self.assertIs(latup._as_input(x), x)  # float32, C order: handed over as it is
        self.assertIsNot(latup._as_input(x.astype(np.float64)), x)
        self.assertTrue(latup._as_input(x[:, ::2]).flags.c_contiguous)  # strided: one copy
        y = self.lua.upscale(x, 2)
        self.assertFalse(y.flags.owndata)  # a view of the library's buffer
        self.assertIsInstance(y.base, latup._Owned)
        v = y[0]  # views keep the buffer alive after y goes
        del y
        self.assertEqual(float(v.sum()), float(v.sum()))

    def test_errors_carry_the_message(self):
        with self.assertRaises(latup.LatupError) as e:
            latup.Lua(self.path("missing.pth"))
        self.assertEqual(e.exception.status, latup.E_IO)
        self.assertIn("missing.pth", str(e.exception))
        with self.assertRaises(latup.LatupError) as e:
            self.lua.upscale(np.zeros((4, 16, 16), np.float32), 2)
        self.assertEqual(e.exception.status, latup.E_INPUT)
        self.assertIn("4 channels, the model expects 16", str(e.exception))
        with self.assertRaises(latup.LatupError) as e:
            self.lua.upscale(np.load(LATENT), 3)
        self.assertEqual(e.exception.status, latup.E_USAGE)
        bad = np.load(LATENT)
        bad[0, 0, 0] = np.nan
        with self.assertRaises(latup.LatupError) as e:
            self.vae.decode(bad)
        self.assertIn("NaN", str(e.exception))

    def test_threads_and_budget(self):
        x = np.load(LATENT)
        y1 = self.lua.upscale(x, 2, threads=1)
        y2 = self.lua.upscale(x, 2, threads=2)
        self.assertTrue(np.array_equal(y1, y2))  # the bits do not depend on the thread count
        with self.assertRaises(latup.LatupError) as e:
            latup.Vae(VAE, max_memory="1K").decode(x)
        self.assertEqual(e.exception.status, latup.E_NOMEM)
        self.assertIn("cannot be met", str(e.exception))
        tiled = latup.Vae(VAE, tile=8).decode(x)
        exact = self.vae.decode(x)
        self.assertEqual(tiled.shape, exact.shape)
        self.assertFalse(np.array_equal(tiled, exact))  # tiling is an approximation
        self.assertGreater(latup.default_threads(), 0)
        self.assertGreater(latup.default_max_memory(), 0)
        self.assertEqual(latup._parse_size("1.5G"), 3 << 29)
        with self.assertRaises(ValueError):
            latup._parse_size("nan")

    def test_device(self):
        try:
            cuda = latup.Lua(LUA, device="cuda")
        except latup.LatupError as e:  # a build without CUDA, or no GPU: refused at once
            self.assertEqual(e.status, latup.E_DEVICE)
            self.assertIn("CUDA", str(e))
        else:
            self.assertEqual(cuda.upscale(np.load(LATENT), 2).shape, (16, 48, 80))
        with self.assertRaises(ValueError):
            latup.Vae(VAE, device="tpu")

    def test_closed_model(self):
        with latup.Lua(LUA) as m:
            m.upscale(np.load(LATENT), 2)
        with self.assertRaises(ValueError):
            m.upscale(np.load(LATENT), 2)

    def test_version(self):
        with open(os.path.join(ROOT, "include/latup.h")) as f:
            h = f.read()
        self.assertIn('#define LATUP_VERSION_STRING "%s"' % latup.version(), h)
        with open(os.path.join(ROOT, "python/pyproject.toml")) as f:
            self.assertIn('version = "%s"' % latup.version(), f.read())


class TestAbi(unittest.TestCase):
    """Every field of every ctypes mirror at the offset a C compiler gives it."""

    MIRRORS = {
        "latup_tensor": latup._Tensor,
        "latup_run_opts": latup._RunOpts,
        "latup_decode_opts": latup._DecodeOpts,
        "latup_encode_opts": latup._EncodeOpts,
        "latup_lua_config": latup._LuaConfig,
        "latup_vae_config": latup._VaeConfig,
        "latup_call_opts": latup._CallOpts,
        "latup_call_memory": latup._CallMemory,
        "latup_plan_take": latup._PlanTake,
        "latup_mem_plan": latup._MemPlan,
        "latup_lua_plan": latup._LuaPlan,
        "latup_vae_plan": latup._VaePlan,
        "latup_decode_plan": latup._DecodePlan,
        "latup_plan": latup._Plan,
    }

    PROGRESS_FIELDS = {name for name, _ in latup._PROGRESS_FIELDS}

    @staticmethod
    def header_has_progress():
        with open(os.path.join(ROOT, "include/latup.h")) as f:
            return "latup_progress_fn" in f.read()

    def test_layouts(self):
        """All fields; the progress fields (issue 21) only once the header declares them, and then the
        structs' sizes too (the mirrors carry them at the end either way)."""
        with_progress = self.header_has_progress()
        lines = ['#include "latup.h"', "#include <stddef.h>", "#include <stdio.h>", "int main(void) {"]
        for c, py in self.MIRRORS.items():
            names = [name for name, _ in py._fields_]
            if with_progress or not self.PROGRESS_FIELDS & set(names):
                lines.append('printf("%s sizeof %%zu\\n", sizeof(%s));' % (c, c))
            for name in names:
                if name in self.PROGRESS_FIELDS and not with_progress:
                    continue
                lines.append('printf("%s %s %%zu\\n", offsetof(%s, %s));' % (c, name, c, name))
        lines.append("return 0; }")
        with tempfile.TemporaryDirectory() as d:
            src, exe = os.path.join(d, "abi.c"), os.path.join(d, "abi")
            with open(src, "w") as f:
                f.write("\n".join(lines))
            cc = os.environ.get("CC", "cc")
            subprocess.run([cc, "-I", os.path.join(ROOT, "include"), "-o", exe, src], check=True)
            out = subprocess.run([exe], check=True, capture_output=True, text=True).stdout
        bad = []
        for line in out.splitlines():
            c, field, value = line.split()
            py = self.MIRRORS[c]
            got = ctypes_sizeof(py) if field == "sizeof" else getattr(py, field).offset
            if got != int(value):
                bad.append("%s.%s: C %s, ctypes %d" % (c, field, value, got))
        self.assertEqual(bad, [], "python/latup mirrors drifted from include/latup.h")

    def test_progress_fields_last(self):
        """The two progress fields close latup_run_opts, latup_decode_opts, latup_call_opts and
        latup_encode_opts, in that order, as the header declares them (issues 21, 22)."""
        for py in (latup._RunOpts, latup._DecodeOpts, latup._CallOpts, latup._EncodeOpts):
            self.assertEqual([n for n, _ in py._fields_[-2:]], ["on_progress", "progress_user"])
        if not self.header_has_progress():
            self.skipTest("include/latup.h does not declare latup_progress_fn yet: the layouts of the progress "
                          "fields are checked by test_layouts once the C side of issue 21 is merged")


def ctypes_sizeof(t):
    import ctypes
    return ctypes.sizeof(t)


if __name__ == "__main__":
    unittest.main()
