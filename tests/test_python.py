"""The Python package (python/voxcl) against PyTorch: every op's forward and backward on random
inputs over several shapes, the optimiser steps against torch.optim, errors, devices, and a
NIfTI round trip checked with nibabel.

    /usr/bin/python3 tests/test_python.py [-v] [-k SUBSTRING]

The library is $VOXCL_LIBRARY (ctest sets it to the build's libvoxcl.so), else the package's
default search. Exits 77 (ctest: skipped) when numpy or torch cannot be imported or there is no
OpenCL device; 1 when a check fails. Prints one line per failed check, then "N passed, M failed".

References are computed by torch in float64 from exactly the float32 inputs voxcl gets, so a
difference is voxcl's float32 arithmetic alone. A check passes when every element satisfies
|got - ref| <= atol + rtol * |ref| (numpy.allclose). Tolerances (inputs O(1), uniform in [-1, 1]):
  conv3d / conv_transpose3d, forward and all gradients: rtol 1e-4, atol 1e-4 (float32 sums of
      up to ~1000 O(1) products: the usual error is ~1e-6, the worst-case bound ~1e-4);
  instance_norm forward: 1e-5 / 1e-5; its gradients: 1e-4 / 1e-4;
  relu, leaky_relu: rtol 1e-6, atol 1e-7 (one float rounding); cat: exact (a copy);
  softmax and its backward: rtol 1e-5, atol 1e-6 (float exp, one division);
  dice_ce_loss value: rtol 1e-5, atol 1e-5; dlogits (O(1/voxels)): rtol 1e-4, atol 1e-7;
  adam_step, sgd_step after 5 steps against torch.optim in float32: rtol 1e-5, atol 1e-6;
  NIfTI: data bitwise equal (float32 and labels), affines to 1e-5.
"""
import os
import subprocess
import sys
import tempfile

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
pycheck.seed(12345)

CONV = dict(rtol=1e-4, atol=1e-4)
NORM_FWD = dict(rtol=1e-5, atol=1e-5)
NORM_BWD = dict(rtol=1e-4, atol=1e-4)
ELT = dict(rtol=1e-6, atol=1e-7)
EXACT = dict(rtol=0.0, atol=0.0)
SOFTMAX = dict(rtol=1e-5, atol=1e-6)
LOSS = dict(rtol=1e-5, atol=1e-5)
DLOGITS = dict(rtol=1e-4, atol=1e-7)
OPT = dict(rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------- helpers


# ------------------------------------------------------------------------------- convolutions
# (name, N, C, O, (D, H, W), k, stride, padding, dilation, groups, bias)
CONV_CASES = [
    ("k3 s1 p1 bias", 2, 3, 4, (5, 6, 7), 3, 1, 1, 1, 1, True),
    ("k3 s2 p1 odd", 1, 4, 6, (7, 5, 9), 3, 2, 1, 1, 1, False),
    ("k3 s1 p2 dil2 groups2", 2, 4, 4, (9, 8, 7), 3, 1, 2, 2, 2, True),
    ("depthwise k3 p1", 1, 4, 4, (6, 5, 4), 3, 1, 1, 1, 4, True),
    ("1x1x1", 2, 5, 3, (4, 3, 5), 1, 1, 0, 1, 1, True),
    ("k(1,3,3) s(1,2,2) p(0,1,1)", 1, 3, 5, (3, 9, 8), (1, 3, 3), (1, 2, 2), (0, 1, 1), 1, 1, True),
    ("k2 s2 p0 odd", 2, 2, 3, (7, 7, 5), 2, 2, 0, 1, 1, True),
    ("k3 s2 p0 dil(1,2,1) groups3", 1, 6, 3, (9, 10, 7), 3, 2, 0, (1, 2, 1), 3, False),
    ("k5 s1 p2", 1, 2, 2, (6, 6, 6), 5, 1, 2, 1, 1, True),
]


def kernel3(k):
    return (k,) * 3 if isinstance(k, int) else tuple(k)


def test_conv3d():
    for name, n, c, o, sp, k, s, p, d, g, bias in CONV_CASES:
        x, w = rand(n, c, *sp), rand(o, c // g, *kernel3(k))
        b = rand(o) if bias else None
        kw = dict(stride=s, padding=p, dilation=d, groups=g)
        tx, tw, tb = t64(x, True), t64(w, True), t64(b, True)
        ref = F.conv3d(tx, tw, tb, **kw)
        y = voxcl.conv3d(x, w, b, **kw)
        close(f"conv3d {name} forward", y, ref, **CONV)
        dy = rand(*ref.shape)
        ref.backward(t64(dy))
        dx, dw, db = voxcl.conv3d_backward(x, w, dy, b, **kw)
        close(f"conv3d {name} dx", dx, tx.grad, **CONV)
        close(f"conv3d {name} dw", dw, tw.grad, **CONV)
        close(f"conv3d {name} db", db, tb.grad if bias else None, **CONV)
    # Unbatched [C, D, H, W] input, as torch allows.
    x, w, b = rand(3, 5, 4, 6), rand(2, 3, 3, 3, 3), rand(2)
    close("conv3d unbatched forward", voxcl.conv3d(x, w, b, padding=1),
          F.conv3d(t64(x), t64(w), t64(b), padding=1), **CONV)


# (name, N, C, O, (D, H, W), k, stride, padding, output_padding, groups, dilation, bias)
CONVT_CASES = [
    ("k2 s2 (U-Net up)", 2, 8, 4, (3, 4, 5), 2, 2, 0, 0, 1, 1, True),
    ("k3 s2 p1 output_padding1", 1, 4, 3, (3, 5, 4), 3, 2, 1, 1, 1, 1, True),
    ("k3 s1 p1 groups2 dil2", 1, 4, 6, (4, 5, 3), 3, 1, 1, 0, 2, 2, True),
    ("k(1,2,2) s(1,2,2)", 2, 3, 2, (3, 4, 3), (1, 2, 2), (1, 2, 2), 0, 0, 1, 1, False),
    ("k3 s3 output_padding(2,1,0)", 1, 2, 3, (2, 3, 3), 3, 3, 0, (2, 1, 0), 1, 1, True),
    ("k4 s2 p1 odd", 1, 3, 3, (5, 3, 7), 4, 2, 1, 0, 1, 1, True),
]


def test_conv_transpose3d():
    for name, n, c, o, sp, k, s, p, op, g, d, bias in CONVT_CASES:
        x, w = rand(n, c, *sp), rand(c, o // g, *kernel3(k))
        b = rand(o) if bias else None
        kw = dict(stride=s, padding=p, output_padding=op, groups=g, dilation=d)
        tx, tw, tb = t64(x, True), t64(w, True), t64(b, True)
        ref = F.conv_transpose3d(tx, tw, tb, **kw)
        y = voxcl.conv_transpose3d(x, w, b, **kw)
        close(f"conv_transpose3d {name} forward", y, ref, **CONV)
        dy = rand(*ref.shape)
        ref.backward(t64(dy))
        dx, dw, db = voxcl.conv_transpose3d_backward(x, w, dy, b, **kw)
        close(f"conv_transpose3d {name} dx", dx, tx.grad, **CONV)
        close(f"conv_transpose3d {name} dw", dw, tw.grad, **CONV)
        close(f"conv_transpose3d {name} db", db, tb.grad if bias else None, **CONV)


# ------------------------------------------------------------------------------- normalisation
def test_instance_norm():
    cases = [  # (name, shape, affine, activation, input offset)
        ("affine", (2, 3, 5, 6, 7), True, None, 0.0),
        ("no affine", (1, 4, 3, 5, 4), False, None, 0.0),
        ("affine + leaky_relu", (2, 2, 4, 4, 4), True, "leaky_relu", 0.0),
        ("affine + relu, mean 5", (1, 3, 6, 3, 5), True, "relu", 5.0),
        ("4-D [N, C, H, W]", (2, 3, 7, 5), True, None, 0.0),
        ("one voxel row of 9", (3, 2, 9, 1, 1), True, None, 0.0),
    ]
    for name, shape, affine, act, offset in cases:
        c = shape[1]
        x = rand(*shape) + np.float32(offset)
        gam, bet = (rand(c, lo=0.5, hi=1.5), rand(c)) if affine else (None, None)
        tx, tg, tb = t64(x, True), t64(gam, True), t64(bet, True)
        ref = F.instance_norm(tx, weight=tg, bias=tb, eps=1e-5)
        if act == "relu":
            ref = F.relu(ref)
        elif act == "leaky_relu":
            ref = F.leaky_relu(ref, 0.01)
        y = voxcl.instance_norm(x, gam, bet, eps=1e-5, activation=act)
        close(f"instance_norm {name} forward", y, ref, **NORM_FWD)
        dy = rand(*shape)
        ref.backward(t64(dy))
        dx, dg, db = voxcl.instance_norm_backward(x, dy, gam, bet, eps=1e-5, activation=act)
        close(f"instance_norm {name} dx", dx, tx.grad, **NORM_BWD)
        close(f"instance_norm {name} dweight", dg, tg.grad if affine else None, **NORM_BWD)
        close(f"instance_norm {name} dbias", db, tb.grad if affine else None, **NORM_BWD)
    # Only a weight: the bias is 0 (torch accepts a lone weight too).
    x, gam = rand(1, 2, 3, 4, 5), rand(2)
    close("instance_norm weight only", voxcl.instance_norm(x, gam), F.instance_norm(t64(x), weight=t64(gam)),
          **NORM_FWD)


# ------------------------------------------------------------------------------- elementwise
def test_activations():
    for shape in [(2, 3, 4, 5, 6), (7,), (3, 11, 13)]:
        x = rand(*shape)
        x[np.abs(x) < 1e-3] = 0.5  # no input at the kink
        dy = rand(*shape)
        for name, f, b, tf, kw in [
            ("relu", voxcl.relu, voxcl.relu_backward, F.relu, {}),
            ("leaky_relu 0.01", voxcl.leaky_relu, voxcl.leaky_relu_backward, F.leaky_relu, {"negative_slope": 0.01}),
            ("leaky_relu 0.2", voxcl.leaky_relu, voxcl.leaky_relu_backward, F.leaky_relu, {"negative_slope": 0.2}),
            ("leaky_relu -0.5", voxcl.leaky_relu, voxcl.leaky_relu_backward, F.leaky_relu, {"negative_slope": -0.5}),
        ]:
            tx = t64(x, True)
            ref = tf(tx, **kw)
            close(f"{name} {shape} forward", f(x, **kw), ref, **ELT)
            ref.backward(t64(dy))
            close(f"{name} {shape} dx", b(x, dy, **kw), tx.grad, **ELT)


def test_softmax():
    for shape in [(2, 3, 4, 5, 6), (1, 5, 3, 1, 7), (2, 4, 9), (3, 2)]:
        x = rand(*shape, lo=-4, hi=4)
        tx = t64(x, True)
        ref = F.softmax(tx, dim=1)
        close(f"softmax {shape} forward", voxcl.softmax(x, dim=1), ref, **SOFTMAX)
        dy = rand(*shape)
        ref.backward(t64(dy))
        close(f"softmax {shape} dx", voxcl.softmax_backward(x, dy), tx.grad, **SOFTMAX)
    raises("softmax dim=2", ValueError, voxcl.softmax, rand(1, 2, 3, 4, 5), dim=2)
    close("softmax dim=-4 of 5-D is dim 1", voxcl.softmax(x := rand(1, 3, 2, 2, 2), dim=-4),
          F.softmax(t64(x), dim=1), **SOFTMAX)


def test_cat():
    for shapes in [[(2, 3, 4, 5, 6), (2, 2, 4, 5, 6)], [(1, 1, 3, 3, 3), (1, 4, 3, 3, 3), (1, 2, 3, 3, 3)],
                   [(2, 5, 7, 3)], [(1, 2, 5), (1, 3, 5)]]:
        xs = [rand(*s) for s in shapes]
        txs = [t64(x, True) for x in xs]
        ref = torch.cat(txs, dim=1)
        close(f"cat {shapes} forward", voxcl.cat(xs, dim=1), ref, **EXACT)
        dy = rand(*ref.shape)
        ref.backward(t64(dy))
        grads = voxcl.cat_backward(dy, [s[1] for s in shapes])
        ok(len(grads) == len(xs), f"cat {shapes}: {len(grads)} gradients")
        for i, (gx, tx) in enumerate(zip(grads, txs)):
            close(f"cat {shapes} d{i}", gx, tx.grad, **EXACT)
        grads2 = voxcl.cat_backward(dy, xs)  # the inputs themselves give the sizes
        ok(all(np.array_equal(a, b) for a, b in zip(grads, grads2)), f"cat {shapes}: sizes from the inputs")
    raises("cat dim=2", ValueError, voxcl.cat, [rand(1, 2, 3, 3, 3)] * 2, dim=2)
    raises("cat spatial mismatch", ValueError, voxcl.cat, [rand(1, 2, 3, 3, 3), rand(1, 2, 3, 3, 4)])


# ------------------------------------------------------------------------------- loss
def dice_ce_torch(logits, labels, ce_weight=1.0, dice_weight=1.0, include_background=False, smooth=1e-5):
    """The documented loss, in float64 torch."""
    k = logits.shape[1]
    lab = torch.tensor(labels.reshape(labels.shape[0], *labels.shape[-3:]), dtype=torch.long)
    ce = F.cross_entropy(logits, lab)  # mean over n and voxels
    p = F.softmax(logits, dim=1)
    y = F.one_hot(lab, k).movedim(-1, 1).double()
    axes = tuple(range(2, logits.ndim))
    tp = (p * y).sum(axes)
    fp = (p * (1 - y)).sum(axes)
    fn = ((1 - p) * y).sum(axes)
    dice = 1 - (2 * tp + smooth) / (2 * tp + fp + fn + smooth)  # [N, K]
    if not include_background:
        dice = dice[:, 1:]
    return ce_weight * ce + dice_weight * dice.mean()


def test_loss():
    cases = [  # (name, N, K, spatial, kwargs)
        ("default", 2, 3, (4, 5, 6), {}),
        ("background, weights 0.5/2", 1, 4, (3, 7, 5), dict(ce_weight=0.5, dice_weight=2.0, include_background=True)),
        ("two classes, smooth 1", 3, 2, (2, 3, 9), dict(smooth=1.0)),
    ]
    for name, n, k, sp, kw in cases:
        logits = rand(n, k, *sp, lo=-3, hi=3)
        labels = pycheck.RNG.integers(0, k, size=(n, 1, *sp)).astype(np.float32)
        tl = t64(logits, True)
        ref = dice_ce_torch(tl, labels, **kw)
        got = voxcl.dice_ce_loss(logits, labels, **kw)
        ok(isinstance(got, float), f"dice_ce_loss {name}: returns a float")
        close(f"dice_ce_loss {name} value", np.float32(got), ref, **LOSS)
        ref.backward()
        close(f"dice_ce_loss {name} dlogits", voxcl.dice_ce_loss_backward(logits, labels, **kw), tl.grad, **DLOGITS)
        close(f"dice_ce_loss {name} dlogits * 3", voxcl.dice_ce_loss_backward(logits, labels, 3.0, **kw),
              3 * tl.grad, **DLOGITS)
        # Labels as [N, D, H, W] integers, as torch's cross_entropy takes them.
        close(f"dice_ce_loss {name} int labels [N, D, H, W]",
              np.float32(voxcl.dice_ce_loss(logits, labels[:, 0].astype(np.int64), **kw)), ref, **LOSS)
    raises("dice_ce_loss labels of another shape", ValueError, voxcl.dice_ce_loss, rand(1, 3, 2, 2, 2),
           np.zeros((1, 1, 2, 2, 3), np.float32))
    bad = np.zeros((1, 1, 2, 2, 2), np.float32)
    bad[0, 0, 1, 1, 1] = 3
    raises("dice_ce_loss label 3 of 3 classes", voxcl.VoxclError, voxcl.dice_ce_loss, rand(1, 3, 2, 2, 2), bad,
           status="VX_ERR_INVALID_ARGUMENT")


# ------------------------------------------------------------------------------- optimisers
def test_optimizers():
    shape = (3, 4, 5)
    for name, kw, decoupled in [("Adam", dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8), False),
                                ("Adam wd", dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1), False),
                                ("AdamW", dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.05), True)]:
        p = rand(*shape)
        tp = torch.tensor(p.copy(), requires_grad=True)
        opt = (torch.optim.AdamW if decoupled else torch.optim.Adam)([tp], **kw)
        if not decoupled and "weight_decay" not in kw:
            kw = dict(kw, weight_decay=0.0)
        m, v = np.zeros_like(p), np.zeros_like(p)
        for step in range(1, 6):
            g = rand(*shape)
            tp.grad = torch.tensor(g)
            opt.step()
            out = voxcl.adam_step(p, g, m, v, step, decoupled=decoupled, **kw)
            ok(out is p, f"{name}: adam_step returns param")
        st = opt.state[tp]
        close(f"{name} param after 5 steps", p, tp, **OPT)
        close(f"{name} exp_avg", m, st["exp_avg"], **OPT)
        close(f"{name} exp_avg_sq", v, st["exp_avg_sq"], **OPT)
    for name, kw in [("SGD", dict(lr=0.1)), ("SGD momentum", dict(lr=0.05, momentum=0.9)),
                     ("SGD nesterov wd", dict(lr=0.01, momentum=0.99, nesterov=True, weight_decay=3e-5))]:
        p = rand(*shape)
        tp = torch.tensor(p.copy(), requires_grad=True)
        opt = torch.optim.SGD([tp], **kw)
        buf = np.zeros_like(p)
        for _ in range(5):
            g = rand(*shape)
            tp.grad = torch.tensor(g)
            opt.step()
            voxcl.sgd_step(p, g, buf, **kw)
        close(f"{name} param after 5 steps", p, tp, **OPT)
        if kw.get("momentum"):
            close(f"{name} momentum_buffer", buf, opt.state[tp]["momentum_buffer"], **OPT)
    p = rand(4)
    raises("adam_step on a float64 param", TypeError, voxcl.adam_step, p.astype(np.float64), rand(4),
           np.zeros(4, np.float32), np.zeros(4, np.float32), 1)
    raises("adam_step step 0", voxcl.VoxclError, voxcl.adam_step, p, rand(4), np.zeros(4, np.float32),
           np.zeros(4, np.float32), 0, status="VX_ERR_INVALID_ARGUMENT", text="step")


# ------------------------------------------------------------------------------- errors, devices
def test_errors_and_devices():
    raises("conv3d channel mismatch", voxcl.VoxclError, voxcl.conv3d, rand(1, 3, 4, 4, 4), rand(2, 2, 3, 3, 3),
           status="VX_ERR_SHAPE")
    raises("conv3d output size 0", ValueError, voxcl.conv3d, rand(1, 1, 2, 2, 2), rand(1, 1, 3, 3, 3))
    raises("conv3d 3-D input", ValueError, voxcl.conv3d, rand(4, 4, 4), rand(1, 1, 3, 3, 3))
    raises("conv3d negative padding", voxcl.VoxclError, voxcl.conv3d, rand(1, 1, 5, 5, 5), rand(1, 1, 1, 1, 1),
           padding=(0, 0, -1), status="VX_ERR_INVALID_ARGUMENT")
    raises("instance_norm activation name", ValueError, voxcl.instance_norm, rand(1, 2, 3, 3, 3), activation="gelu")
    ok(voxcl.get_context().last_error() != "", "the context keeps the last error")
    devs = voxcl.devices()
    ok(len(devs) >= 1 and sum(d["default"] for d in devs) == 1, f"devices(): {len(devs)}, one default")
    keys = {"index", "name", "vendor", "platform", "driver_version", "opencl_version", "type", "compute_units",
            "global_mem_bytes", "local_mem_bytes", "max_alloc_bytes", "fp16", "fp64", "default"}
    ok(all(set(d) == keys for d in devs), "devices(): the keys of `voxcl devices --json`")
    cli = os.path.join(os.path.dirname(voxcl.library_path), "voxcl")
    if os.path.isfile(cli) and os.access(cli, os.X_OK):
        import json
        out = subprocess.run([cli, "devices", "--json"], capture_output=True, text=True)
        ok(out.returncode == 0 and json.loads(out.stdout) == devs, "devices() == `voxcl devices --json`")
    raises("set_device of no device", voxcl.VoxclError, voxcl.set_device, "no-such-device-xyz",
           status="VX_ERR_NO_DEVICE")
    before = voxcl.get_context()
    ctx = voxcl.set_device(devs[0]["index"])
    ok(ctx is voxcl.get_context() and ctx is not before and before.handle is None,
       "set_device replaces (and closes) the default context")
    ok(voxcl.get_context().device["name"] == devs[0]["name"], "the context is on the requested device")
    x = rand(1, 2, 3, 3, 3)
    close("an op on the new context", voxcl.relu(x), F.relu(t64(x)), **ELT)


# ------------------------------------------------------------------------------- NIfTI
def test_nifti():
    try:
        import nibabel as nib
    except ImportError:
        print("note: nibabel missing, NIfTI round trip skipped")
        return
    with tempfile.TemporaryDirectory(prefix="voxcl-py-") as tmp:
        # voxcl writes float32 [Z, Y, X] with a spacing; nibabel sees [X, Y, Z].
        img = rand(5, 6, 7)  # Z=5, Y=6, X=7
        f1 = os.path.join(tmp, "img.nii.gz")
        voxcl.save_nifti(f1, img, spacing=(0.5, 1.5, 2.0))
        n1 = nib.load(f1)
        ok(n1.shape == (7, 6, 5), f"nibabel shape {n1.shape} == (7, 6, 5)")
        ok(n1.get_data_dtype() == np.float32, f"nibabel dtype {n1.get_data_dtype()}")
        ok(np.array_equal(np.asarray(n1.dataobj).transpose(2, 1, 0), img), "nibabel data == written data")
        ok(np.allclose(n1.header.get_zooms(), (0.5, 1.5, 2.0)), f"nibabel zooms {n1.header.get_zooms()}")
        data, aff, hdr = voxcl.load_nifti(f1)
        ok(data.shape == (1, 5, 6, 7) and data.dtype == np.float32, f"load_nifti shape {data.shape}")
        ok(np.array_equal(data[0], img), "load_nifti data == written data")
        ok(np.allclose(aff, n1.affine, atol=1e-5), "load_nifti affine == nibabel affine")
        ok(hdr["shape"] == (7, 6, 5) and hdr["channels"] == 1 and np.allclose(hdr["spacing"], (0.5, 1.5, 2.0))
           and hdr["datatype"] == 16 and hdr["datatype_name"] == "float32", f"header {hdr}")

        # nibabel writes int16 with scaling and a rotated affine; voxcl reads what nibabel reads.
        raw = pycheck.RNG.integers(-300, 300, size=(6, 4, 5)).astype(np.int16)  # X, Y, Z
        rot = np.array([[0, -1.2, 0, 10], [0.8, 0, 0, -5], [0, 0, 2.5, 3], [0, 0, 0, 1]])
        ni = nib.Nifti1Image(raw, rot)
        ni.header.set_data_dtype(np.int16)
        ni.header.set_slope_inter(0.5, -2.0)
        f2 = os.path.join(tmp, "nib.nii")
        nib.save(ni, f2)
        n2 = nib.load(f2)
        data, aff, hdr = voxcl.load_nifti(f2)
        ok(data.shape == (1, 5, 4, 6), f"load_nifti of nibabel's file: shape {data.shape}")
        ok(np.allclose(data[0], n2.get_fdata().transpose(2, 1, 0), rtol=0, atol=1e-6), "scaled int16 data")
        ok(np.allclose(aff, n2.affine, atol=1e-5), "affine of a rotated file")
        ok(hdr["datatype"] == 4 and hdr["datatype_name"] == "int16", f"datatype {hdr['datatype']}")

        # Labels like nibabel's file: uint8, the like-file's affine.
        lab = pycheck.RNG.integers(0, 3, size=(5, 4, 6)).astype(np.float32)
        f3 = os.path.join(tmp, "lab.nii.gz")
        voxcl.save_nifti(f3, lab, like=f2, labels=True)
        n3 = nib.load(f3)
        ok(n3.get_data_dtype() == np.uint8, f"labels stored as {n3.get_data_dtype()}")
        ok(np.array_equal(np.asarray(n3.dataobj).transpose(2, 1, 0), lab.astype(np.uint8)), "label values")
        ok(np.allclose(n3.affine, n2.affine, atol=1e-5), "labels keep the like-file's affine")
        back, _, h3 = voxcl.load_nifti(f3)
        ok(np.array_equal(back[0], lab) and h3["datatype"] == 2, "labels read back")

        # 3 channels of floats: a 4-D file.
        probs = rand(3, 5, 4, 6)
        f4 = os.path.join(tmp, "probs.nii.gz")
        voxcl.save_nifti(f4, probs, like=f2)
        n4 = nib.load(f4)
        ok(n4.shape == (6, 4, 5, 3), f"4-D file shape {n4.shape}")
        ok(np.array_equal(np.asarray(n4.dataobj).transpose(3, 2, 1, 0), probs), "4-D data")
        back, _, h4 = voxcl.load_nifti(f4)
        ok(np.array_equal(back, probs) and h4["channels"] == 3, "4-D data read back")

        raises("load_nifti of a missing file", voxcl.VoxclError, voxcl.load_nifti, os.path.join(tmp, "none.nii"),
               status="VX_ERR_IO")
        raises("save_nifti like of other dims", ValueError, voxcl.save_nifti, os.path.join(tmp, "x.nii"),
               rand(2, 2, 2), like=f2)
        raises("save_nifti labels with 2 channels", ValueError, voxcl.save_nifti,
               os.path.join(tmp, "x.nii"), rand(2, 5, 4, 6), like=f2, labels=True)
        raises("save_nifti .txt", voxcl.VoxclError, voxcl.save_nifti, os.path.join(tmp, "x.txt"), rand(2, 2, 2),
               status="VX_ERR_INVALID_ARGUMENT")


TESTS = [test_conv3d, test_conv_transpose3d, test_instance_norm, test_activations, test_softmax, test_cat,
         test_loss, test_optimizers, test_errors_and_devices, test_nifti]


def main():
    return pycheck.run(voxcl, TESTS)


if __name__ == "__main__":
    sys.exit(main())
