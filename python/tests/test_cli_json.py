"""test_cli_json.py — the JSON latup prints, read the way a scheduler reads it: json.loads on the
output of `--dry-run --json` (upscale, decode, run; one input and several) and `latup info --json`
(a LUA, a SwinIR, a VAE, a .npy latent, a ComfyUI .latent), field names and types checked; and
input names that JSON must escape or that are not UTF-8, which come back through
os.fsencode(json.loads(...)) as the bytes of the name (docs/scale-out.md). Run by
`make test-python`."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("LATUP_BIN", os.path.join(ROOT, "build/latup"))
LUA = os.path.join(ROOT, "ref_data/small/model.safetensors.gz")
VAE = os.path.join(ROOT, "ref_data/vae/flux_small.ldm.safetensors.gz")
LATENT = os.path.join(ROOT, "ref_data/demo/latent.npy")
BATCH = os.path.join(ROOT, "tests/data/latent/comfyui_flux_b2.latent")


def latup_json(*args):
    """latup's stdout as JSON: exit 0, nothing on stderr, one line."""
    r = subprocess.run([BIN, *args], capture_output=True)
    if r.returncode != 0:
        raise AssertionError("latup %s: exit %d: %s" % (args[0], r.returncode, r.stderr.decode(errors="replace")))
    assert r.stderr == b"", r.stderr
    assert r.stdout.endswith(b"\n") and r.stdout.count(b"\n") == 1, r.stdout
    return json.loads(r.stdout)


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


class TestDryRunJson(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.out = os.path.join(cls.tmp.name, "never")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def plan(self, stage):
        p = stage["plan"]
        self.assertEqual(list(p), ["arena", "weights", "output", "takes"])
        for k in ("arena", "weights", "output"):
            self.assertTrue(is_int(p[k]) and p[k] > 0, k)
        self.assertTrue(p["takes"])
        for name, size in p["takes"].items():
            self.assertTrue(is_int(size) and 0 < size <= p["arena"], name)

    def check(self, cmd, inputs, *args):
        ins = [a for i in inputs for a in ("--in", i)]  # one input per --in
        d = latup_json(cmd, *args, *ins, "--out-dir", self.out, "--threads", "2", "--dry-run", "--json")
        self.assertEqual(list(d), ["command", "threads", "max_memory", "peak", "items"])
        self.assertEqual(d["command"], cmd)
        self.assertEqual(d["threads"], 2)
        self.assertTrue(is_int(d["max_memory"]) and is_int(d["peak"]))
        self.assertEqual(len(d["items"]), len(inputs))
        for it, path in zip(d["items"], inputs):
            self.assertEqual(it["input"], path)
            self.assertTrue(all(is_int(v) for v in it["shape"]))
            self.assertTrue(is_int(it["peak"]) and it["peak"] <= d["peak"])
            self.assertEqual("upscale" in it, cmd != "decode")
            self.assertEqual("decode" in it, cmd != "upscale")
            if "upscale" in it:
                self.assertTrue(is_int(it["upscale"]["scale"]))
                self.plan(it["upscale"])
            if "decode" in it:
                dec = it["decode"]
                self.assertEqual(list(dec), ["h", "w", "tiled", "tile", "overlap", "reason", "peak", "plan"])
                self.assertIsInstance(dec["tiled"], bool)
                self.assertIsInstance(dec["reason"], str)
                self.assertTrue(is_int(dec["peak"]) and dec["peak"] <= it["peak"])
                self.plan(dec)
        self.assertEqual(max(it["peak"] for it in d["items"]), d["peak"])
        self.assertFalse(os.path.exists(self.out))
        return d

    def test_upscale(self):
        d = self.check("upscale", [LATENT], "-m", LUA, "-s", "2")
        self.assertEqual(d["items"][0]["shape"], [16, 24, 40])
        self.assertEqual(d["items"][0]["upscale"]["scale"], 2)

    def test_decode(self):
        d = self.check("decode", [LATENT], "--vae", VAE)
        self.assertEqual(d["items"][0]["decode"]["tiled"], False)
        d = self.check("decode", [LATENT], "--vae", VAE, "--tile", "8")
        dec = d["items"][0]["decode"]
        self.assertEqual((dec["tiled"], dec["tile"], dec["overlap"]), (True, 8, 2))

    def test_run_batch(self):
        d = self.check("run", [LATENT, BATCH], "-m", LUA, "-s", "2", "--vae", VAE)
        self.assertEqual(d["items"][1]["shape"], [2, 16, 12, 10])
        self.assertEqual((d["items"][1]["decode"]["h"], d["items"][1]["decode"]["w"]), (24, 20))

    def test_names_round_trip(self):
        """A quote, a backslash, a newline; bytes that are not UTF-8: os.fsencode gives them back,
        and the string is the one Python's own os.fsdecode makes of the name."""
        tmp = os.fsencode(self.tmp.name)
        names = [b"x\xff\xfe.npy", b'q"b\\s\nl.npy', b"a\xc3(\xe2\x82 \xed\xa0\x80 \xc3\xa9.npy"]
        paths = [os.path.join(tmp, n) for n in names]
        for p in paths:
            shutil.copyfile(LATENT, p)
        d = self.check("upscale", [os.fsdecode(p) for p in paths], "-m", LUA, "-s", "2")
        for it, p in zip(d["items"], paths):
            self.assertEqual(os.fsencode(it["input"]), p)
        for p in paths:
            info = latup_json("info", p, "--json")
            self.assertEqual(os.fsencode(info["file"]), p)
            self.assertEqual(info["tensor"], [16, 24, 40])


class TestInfoJson(unittest.TestCase):
    CKPT = ["file", "format", "state dict", "tensors", "dtypes", "elements", "kind", "model"]

    def checkpoint(self, path, kind, more):
        d = latup_json("info", path, "--json")
        self.assertEqual(list(d), self.CKPT + more)
        self.assertEqual(d["file"], path)
        self.assertEqual(d["kind"], kind)
        self.assertEqual(list(d["dtypes"]), ["F32", "F16", "BF16", "I64"])
        self.assertEqual(sum(d["dtypes"].values()), d["tensors"])
        self.assertTrue(is_int(d["elements"]) and d["elements"] >= d["tensors"])
        return d

    def test_lua(self):
        d = self.checkpoint(LUA, "lua", ["parameters", "channels", "embed dim", "depths", "heads", "window",
                                         "mlp hidden", "tail", "scales"])
        self.assertEqual((d["channels"], d["tail"], d["scales"]), ([16, 16], "lua-heads", [2, 4]))
        self.assertEqual(len(d["depths"]), len(d["heads"]))
        self.assertTrue(all(is_int(d[k]) for k in ("parameters", "embed dim", "window", "mlp hidden")))

    def test_swinir(self):
        d = self.checkpoint(os.path.join(ROOT, "ref_data/swinir/classic_x2.pth"), "swinir",
                            ["parameters", "channels", "embed dim", "depths", "heads", "window", "mlp hidden",
                             "tail", "scales"])
        self.assertEqual((d["channels"], d["scales"], d["state dict"]), ([3, 3], [2], "params"))

    def test_vae(self):
        d = self.checkpoint(VAE, "vae", ["family", "naming", "prefix", "parameters", "channels", "post_quant_conv",
                                         "levels", "resnets", "upsampling", "encoder"])
        self.assertEqual((d["channels"], d["post_quant_conv"], d["prefix"]), ([16, 3], False, ""))
        self.assertEqual(d["upsampling"], 2 ** (len(d["levels"]) - 1))
        enc = d["encoder"]  # the file's encoder (issue 22): kind, levels, resnets, downsampling, quant_conv, parameters
        self.assertEqual(list(enc), ["kind", "levels", "resnets", "downsampling", "quant_conv", "parameters"])
        self.assertEqual((enc["kind"], enc["downsampling"]), ("ldm", 2 ** (len(enc["levels"]) - 1)))
        self.assertGreater(enc["parameters"], 0)

    def test_latents(self):
        d = self.checkpoint(BATCH, "latent", ["latent"])
        self.assertEqual(d["latent"], [2, 16, 12, 10])
        d = latup_json("info", LATENT, "--json")
        self.assertEqual(d, {"file": LATENT, "format": ".npy", "kind": "tensor", "tensor": [16, 24, 40]})


if __name__ == "__main__":
    unittest.main()
