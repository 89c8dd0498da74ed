"""make_fixtures.py — .npy files written by numpy itself for tests/test_npy.c: float64 and
ml_dtypes.bfloat16 (which numpy saves as the 2-byte void '<V2'). Run with any numpy + ml_dtypes
(pip install numpy ml_dtypes); the values are fixed, so the files are reproducible:
    python3 tests/data/npy/make_fixtures.py
"""
import os

import ml_dtypes
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
# float32-exact values, a value that rounds (0.1), extremes of float32 and a denormal
vals = np.array([[1.0, -2.5, 0.1, 3.4028234663852886e38], [1.401298464324817e-45, -0.0, 65504.0, 1e-3]])
np.save(os.path.join(HERE, "f8_numpy.npy"), vals.astype(np.float64))
np.save(os.path.join(HERE, "bf16_ml_dtypes.npy"), vals.astype(ml_dtypes.bfloat16))
print("numpy", np.__version__, "ml_dtypes", ml_dtypes.__version__)
