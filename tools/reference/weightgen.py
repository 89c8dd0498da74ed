"""The "latup weight generator v1" extended to every tensor kind of LUA, and the input generator:
deterministic integer-level tensors that C (tests/support/weightgen.h) and Python build bit for bit, so
that models at the released widths (220 MB in fp32) are never committed; a golden file records
the seed, the level count and a checksum per tensor instead.

Weights (superset of tools/reference/vae_ref.py's GENERATOR_SPEC, identical on every VAE tensor):
  per tensor: seed = fnv1a64(name) XOR G; splitmix64 stream; k_i = (x_i >> 11) mod (2L+1) - L
  - name ends in ".bias":                            L = 6,  value = k / 64
  - name ends in ".weight", 1-D (LayerNorm, GroupNorm): L = 6,  value = 1 + k / 32
  - name ends in ".weight", 2-D or 4-D (Linear, conv): L = Lw, value = k * 2^-e,
        fan_in = prod(shape[1:]), e = the smallest e >= 0 with 6 * 4^e >= Lw*(Lw+1)*fan_in
  - name ends in "relative_position_bias_table":      L = 16, value = k / 8
  Buffers (relative_position_index, attn_mask) are not generated: latup derives them.

Inputs ("latup input generator v1"): seed = fnv1a64(name) XOR G, the same splitmix64 stream,
  k_i = (x_i >> 11) mod 2049 - 1024, value = k / 512 (uniform on [-2, 2], exact in fp32).
"""
import os
import sys

import numpy as np

sys.path[:0] = [os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), d) for d in ("reference", "golden")]  # the sibling groups of tools/
from vae_ref import checksum, conv_exponent, fnv1a64, splitmix64  # noqa: E402,F401

SPEC = __doc__


def rule(name, shape, Lw):
    """(L, e, offset): value = offset + k * 2^-e."""
    if name.endswith(".bias"):
        return 6, 6, 0.0
    if name.endswith("relative_position_bias_table"):
        return 16, 3, 0.0
    assert name.endswith(".weight"), name
    if len(shape) == 1:
        return 6, 5, 1.0
    fan_in = int(np.prod(shape[1:]))
    return Lw, conv_exponent(Lw, fan_in), 0.0


def levels(name, n, L, global_seed):
    x = splitmix64(fnv1a64(name) ^ global_seed, n)
    return ((x >> np.uint64(11)) % np.uint64(2 * L + 1)).astype(np.int64) - L


def gen_weight(name, shape, global_seed, Lw):
    L, e, off = rule(name, shape, Lw)
    n = int(np.prod(shape, dtype=np.int64))
    v = off + np.ldexp(levels(name, n, L, global_seed).astype(np.float64), -e)
    out = v.astype(np.float32).reshape(shape)
    assert np.array_equal(out.astype(np.float64), v.reshape(shape))
    return out


def gen_input(name, shape, global_seed):
    n = int(np.prod(shape, dtype=np.int64))
    v = levels(name, n, 1024, global_seed).astype(np.float64) / 512.0
    return v.astype(np.float32).reshape(shape)


def self_check():
    # the VAE's v1 rules are a subset: same numbers for a conv weight and a GroupNorm weight
    from vae_ref import gen_tensor
    for name, shape in (("decoder.conv_in.weight", (8, 4, 3, 3)), ("decoder.norm_out.weight", (32,)),
                        ("decoder.conv_in.bias", (8,))):
        assert np.array_equal(gen_tensor(name, shape, 7, 15), gen_weight(name, shape, 7, 15))
    # every encoder name kind (conv_in/out, resnet norms/convs, nin_shortcut, downsample,
    # attention, norm_out, quant_conv) falls into the same rule in both generators
    from vae_ref import ldm_encoder_layout
    cfg = dict(latent_channels=4, block_out_channels=(32, 64), layers_per_block=1,
               norm_num_groups=32, post_quant_conv=True)
    for name, shape in ldm_encoder_layout(cfg).items():
        assert np.array_equal(gen_tensor(name, shape, 7, 15), gen_weight(name, shape, 7, 15)), name


if __name__ == "__main__":
    self_check()
    print("weightgen: self-check OK")
