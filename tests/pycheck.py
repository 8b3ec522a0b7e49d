"""The helpers shared by the Python tests (test_python*.py): check counting, comparison with a
torch/numpy reference under rtol/atol, expected exceptions, float32 random data with a per-file
seed, and the runner (skips with 77 without an OpenCL device, one crashing section is one
failure, "N passed, M failed" at the end)."""
import sys
import time
import traceback

import numpy as np
import torch

VERBOSE = "-v" in sys.argv
ONLY = sys.argv[sys.argv.index("-k") + 1] if "-k" in sys.argv else None
RNG = np.random.default_rng(12345)
counts = {"pass": 0, "fail": 0}


def seed(s):
    """Each test file draws its own fixed sequence."""
    global RNG
    RNG = np.random.default_rng(s)


def ok(cond, what):
    if cond:
        counts["pass"] += 1
        if VERBOSE:
            print(f"ok   {what}")
    else:
        counts["fail"] += 1
        print(f"FAIL {what}")


def close(what, got, ref, rtol, atol):
    """got (numpy) against ref (torch tensor, numpy array or None): |got - ref| <= atol + rtol |ref|."""
    if ref is None or got is None:
        ok(ref is None and got is None, f"{what}: got {type(got).__name__}, expected {type(ref).__name__}")
        return
    ref = ref.detach().double().numpy() if isinstance(ref, torch.Tensor) else np.asarray(ref, np.float64)
    got = np.asarray(got)
    if got.shape != ref.shape:
        ok(False, f"{what}: shape {got.shape}, expected {ref.shape}")
        return
    if got.dtype != np.float32:
        ok(False, f"{what}: dtype {got.dtype}, expected float32")
        return
    err = np.abs(got.astype(np.float64) - ref)
    bad = err > atol + rtol * np.abs(ref)
    if bad.any():
        i = np.unravel_index(np.argmax(err - (atol + rtol * np.abs(ref))), ref.shape)
        ok(False, f"{what}: {int(bad.sum())} of {ref.size} elements off; worst at {tuple(int(v) for v in i)}: "
                  f"{got[i]!r} vs {ref[i]!r} (max |err| {err.max():.3g}; rtol {rtol}, atol {atol})")
    else:
        ok(True, f"{what} (max |err| {err.max() if err.size else 0:.3g})")


def rand(*shape, lo=-1.0, hi=1.0):
    return RNG.uniform(lo, hi, size=shape).astype(np.float32)


def t64(a, grad=False):
    """The float32 array as a float64 torch tensor (exactly the same values)."""
    return None if a is None else torch.tensor(np.asarray(a, np.float64), requires_grad=grad)


def raises(what, exc, f, *args, status=None, text=None, **kw):
    try:
        f(*args, **kw)
    except exc as e:
        good = (status is None or getattr(e, "status_name", None) == status) and (text is None or text in str(e))
        ok(good and str(e) != "", f"{what}: raised {type(e).__name__}: {e}")
        return
    except Exception as e:  # noqa: BLE001
        ok(False, f"{what}: raised {type(e).__name__}: {e}, expected {exc.__name__}")
        return
    ok(False, f"{what}: no exception, expected {exc.__name__}")


def run(voxcl, tests, banner=True):
    """Runs the test sections; returns the exit status."""
    try:
        if not voxcl.devices():
            print("SKIP: no OpenCL device")
            return 77
    except voxcl.VoxclError as e:
        print(f"SKIP: no OpenCL platform: {e}")
        return 77
    if banner:
        print(f"library {voxcl.library_path}; device {voxcl.get_context().device['name']}")
    for t in tests:
        if ONLY and ONLY not in t.__name__:
            continue
        t0 = time.time()
        try:
            t()
        except Exception:  # noqa: BLE001 - a crash in one section is one failure; the others still run
            counts["fail"] += 1
            print(f"FAIL {t.__name__} raised:\n{traceback.format_exc()}")
        if banner:
            print(f"{t.__name__}: {time.time() - t0:.1f} s")
    print(f"{counts['pass']} passed, {counts['fail']} failed")
    return 1 if counts["fail"] else 0
