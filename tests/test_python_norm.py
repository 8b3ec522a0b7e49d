"""python/voxcl/norm.py against PyTorch: batch_norm (training with running-statistics updates,
inference), group_norm and layer_norm_channels, forward and backward, activations, errors.

    /usr/bin/python3 tests/test_python_norm.py [-v]

The library is $VOXCL_LIBRARY (ctest sets it), else the package's default search. Exits 77
(skipped) without numpy/torch or an OpenCL device; 1 when a check fails. One line per failed
check, then "N passed, M failed". References: torch in float64 on exactly the float32 inputs.
Tolerances (inputs O(1)): forward 1e-5 / 1e-5 (rtol / atol), gradients 1e-4 / 1e-4 (float32
sums over a statistics row), running statistics 1e-5 / 1e-6 (one float update).
"""
import os
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:
    print(f"SKIP: {e}")
    sys.exit(77)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "python"))
import voxcl  # noqa: E402
sys.path.insert(0, HERE)
import pycheck  # noqa: E402
from pycheck import close, ok, rand, raises, t64  # noqa: E402,F401

torch.set_num_threads(2)
pycheck.seed(2024)
FWD = dict(rtol=1e-5, atol=1e-5)
BWD = dict(rtol=1e-4, atol=1e-4)
RUN = dict(rtol=1e-5, atol=1e-6)


def act_ref(y, act):
    return F.relu(y) if act == "relu" else F.leaky_relu(y, 0.01) if act == "leaky_relu" else y


def test_batch_norm():
    cases = [  # (shape, affine, activation, training)
        ((2, 3, 4, 5, 6), True, None, True), ((1, 4, 3, 5, 7), False, "relu", True),
        ((2, 2, 3, 4, 5), True, "leaky_relu", True), ((2, 3, 7, 5), True, None, True),
        ((2, 3, 4, 5, 6), True, None, False), ((1, 4, 3, 5, 7), False, "leaky_relu", False),
    ]
    for shape, affine, act, training in cases:
        name = f"batch_norm {shape} affine={affine} act={act} training={training}"
        c = shape[1]
        x = rand(*shape) + np.arange(c, dtype=np.float32).reshape((1, c) + (1,) * (len(shape) - 2))
        gam, bet = (rand(c, lo=0.5, hi=1.5), rand(c)) if affine else (None, None)
        rm, rv = rand(c, lo=-0.5, hi=0.5), rand(c, lo=0.5, hi=1.5)
        trm, trv = t64(rm), t64(rv)
        tx, tg, tb = t64(x, True), t64(gam, True), t64(bet, True)
        ref = act_ref(F.batch_norm(tx, trm, trv, tg, tb, training=training, momentum=0.1, eps=1e-5), act)
        rm_dev, rv_dev = rm.copy(), rv.copy()
        y = voxcl.batch_norm(x, rm_dev, rv_dev, gam, bet, training=training, momentum=0.1, eps=1e-5, activation=act)
        close(f"{name} forward", y, ref, **FWD)
        close(f"{name} running_mean", rm_dev, trm, **RUN)
        close(f"{name} running_var", rv_dev, trv, **RUN)
        dy = rand(*shape)
        ref.backward(t64(dy))
        dx, dg, db = voxcl.batch_norm_backward(x, dy, rm, rv, gam, bet, training=training, eps=1e-5, activation=act)
        close(f"{name} dx", dx, tx.grad, **BWD)
        close(f"{name} dweight", dg, tg.grad if affine else None, **BWD)
        close(f"{name} dbias", db, tb.grad if affine else None, **BWD)
    # training without running statistics (track_running_stats=False)
    x = rand(2, 3, 3, 4, 5)
    close("batch_norm training, no running stats", voxcl.batch_norm(x, None, None, training=True),
          F.batch_norm(t64(x), None, None, training=True), **FWD)


def test_group_norm():
    cases = [((2, 6, 3, 5, 7), 3, True, None), ((1, 8, 4, 4, 4), 2, False, "relu"),
             ((2, 4, 5, 6), 4, True, "leaky_relu"), ((2, 4, 3, 5, 7), 1, True, None),
             ((1, 4, 17, 17, 17), 2, True, None)]
    for shape, groups, affine, act in cases:
        name = f"group_norm {shape} groups={groups} affine={affine} act={act}"
        c = shape[1]
        x = rand(*shape) + 1.0
        gam, bet = (rand(c, lo=0.5, hi=1.5), rand(c)) if affine else (None, None)
        tx, tg, tb = t64(x, True), t64(gam, True), t64(bet, True)
        ref = act_ref(F.group_norm(tx, groups, tg, tb, eps=1e-5), act)
        close(f"{name} forward", voxcl.group_norm(x, groups, gam, bet, eps=1e-5, activation=act), ref, **FWD)
        dy = rand(*shape)
        ref.backward(t64(dy))
        dx, dg, db = voxcl.group_norm_backward(x, dy, groups, gam, bet, eps=1e-5, activation=act)
        close(f"{name} dx", dx, tx.grad, **BWD)
        close(f"{name} dweight", dg, tg.grad if affine else None, **BWD)
        close(f"{name} dbias", db, tb.grad if affine else None, **BWD)


def test_layer_norm_channels():
    for shape, affine in [((2, 5, 3, 4, 5), True), ((1, 8, 4, 4, 4), False), ((2, 3, 6, 7), True)]:
        name = f"layer_norm_channels {shape} affine={affine}"
        c = shape[1]
        x = rand(*shape)
        gam, bet = (rand(c, lo=0.5, hi=1.5), rand(c)) if affine else (None, None)
        tx, tg, tb = t64(x, True), t64(gam, True), t64(bet, True)
        ref = F.layer_norm(tx.movedim(1, -1), (c,), tg, tb, eps=1e-6).movedim(-1, 1)
        close(f"{name} forward", voxcl.layer_norm_channels(x, gam, bet), ref, **FWD)
        dy = rand(*shape)
        ref.backward(t64(dy))
        dx, dg, db = voxcl.layer_norm_channels_backward(x, dy, gam, bet)
        close(f"{name} dx", dx, tx.grad, **BWD)
        close(f"{name} dweight", dg, tg.grad if affine else None, **BWD)
        close(f"{name} dbias", db, tb.grad if affine else None, **BWD)


def test_errors():
    x = rand(2, 4, 3, 3, 3)
    for what, f, args, kw, text in [
        ("group_norm groups not dividing C", voxcl.group_norm, (x, 3), {}, "groups"),
        ("group_norm eps 0", voxcl.group_norm, (x, 2), {"eps": 0.0}, "eps"),
        ("batch_norm inference without running stats", voxcl.batch_norm, (x, None, None), {}, "running_mean"),
        ("layer_norm_channels wrong weight size", voxcl.layer_norm_channels, (x, rand(3), rand(3)), {}, "gamma"),
    ]:
        try:
            f(*args, **kw)
            ok(False, f"{what}: no error raised")
        except voxcl.VoxclError as e:
            ok(text in str(e), f"{what}: {e}")
    try:
        voxcl.batch_norm(x, [0.0] * 4, [1.0] * 4, training=True)
        ok(False, "batch_norm training with list running stats: no error")
    except ValueError as e:
        ok("in place" in str(e), f"batch_norm training with list running stats: {e}")


def main():
    return pycheck.run(voxcl, [test_batch_norm, test_group_norm, test_layer_norm_channels, test_errors], banner=False)


if __name__ == "__main__":
    sys.exit(main())
