"""Writes the golden files tests/test_golden.c checks the C library against: forward outputs
and gradients of PyTorch for a few small cases per op.

    /usr/bin/python3 tests/golden/make_golden.py [OUTPUT_DIR]   (default: this folder)

The inputs are float32 (uniform in [-1, 1], a fixed seed); torch computes in float64 from
exactly those values and the results are rounded to float32, so the files hold the correctly
rounded answers and a difference is the C library's float32 arithmetic alone. For every op
the backward is what torch.autograd gives for L = sum(dy * op(inputs)) with the stored dy.

File format (.vxg, little-endian):
    char     magic[8] = "VXGOLDEN"
    uint32   version  = 1
    uint32   count                       (arrays in the file)
    count times:
        uint32  name_len; char name[name_len]   (no terminating NUL; <= 255 bytes)
        uint32  ndim (1..5); uint32 dims[ndim]
        float32 data[prod(dims)]                 (C order)
Array names are "CASE/TENSOR". Every case has a "CASE/params" array whose layout depends on
the op (documented per op below and in tests/test_golden.c); gradients are "CASE/dx" etc.
Regenerate after changing a case; keep every file small (the whole folder < 200 KB).
"""
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

MAGIC = b"VXGOLDEN"
VERSION = 1
RNG = np.random.default_rng(20240611)


def rand(*shape, lo=-1.0, hi=1.0):
    return RNG.uniform(lo, hi, size=shape).astype(np.float32)


def t64(a):
    return torch.tensor(a.astype(np.float64), requires_grad=True)


def f32(t):
    return t.detach().numpy().astype(np.float32)


def write(path, arrays):
    with open(path, "wb") as f:
        f.write(MAGIC + struct.pack("<II", VERSION, len(arrays)))
        for name, a in arrays:
            a = np.ascontiguousarray(a, dtype="<f4")
            nb = name.encode()
            assert len(nb) <= 255 and 1 <= a.ndim <= 5, name
            f.write(struct.pack("<I", len(nb)) + nb + struct.pack("<I", a.ndim))
            f.write(struct.pack(f"<{a.ndim}I", *a.shape))
            f.write(a.tobytes())
    return os.path.getsize(path)


def triple(v):
    return (v,) * 3 if isinstance(v, int) else tuple(v)


# ------------------------------------------------------------------------------- conv3d
# params: stride[3], padding[3], dilation[3], output_padding[3], groups, has_bias (14 floats)
# tensors: x, w, b (has_bias), dy; y, dx, dw, db (has_bias)
CONV3D = [  # name, N, C, O, (D, H, W), k, stride, padding, dilation, groups, bias
    ("k3_s1_p1_bias", 2, 3, 4, (5, 4, 3), 3, 1, 1, 1, 1, True),
    ("k3_s2_p1_odd", 1, 3, 5, (7, 5, 9), 3, 2, 1, 1, 1, False),
    ("k3_p2_dil2_groups2_bias", 1, 4, 4, (7, 6, 5), 3, 1, 2, 2, 2, True),
    ("k1_bias", 1, 5, 3, (3, 4, 5), 1, 1, 0, 1, 1, True),
    ("k133_s122_p011_bias", 1, 2, 3, (3, 7, 6), (1, 3, 3), (1, 2, 2), (0, 1, 1), 1, 1, True),
    ("k2_s2_depthwise", 1, 3, 3, (6, 5, 6), 2, 2, 0, 1, 3, False),
]

# ConvTranspose3d: same params (groups, output_padding used); w is [C, O/groups, k...].
CONVT3D = [  # name, N, C, O, (D, H, W), k, stride, padding, output_padding, groups, dilation, bias
    ("k2_s2_bias", 1, 6, 3, (3, 4, 3), 2, 2, 0, 0, 1, 1, True),
    ("k3_s2_p1_outpad1_bias", 1, 3, 2, (3, 4, 3), 3, 2, 1, 1, 1, 1, True),
    ("k3_s1_p1_groups2_dil2", 1, 4, 4, (4, 3, 5), 3, 1, 1, 0, 2, 2, False),
    ("k122_s122_bias", 2, 2, 3, (2, 3, 3), (1, 2, 2), (1, 2, 2), 0, 0, 1, 1, True),
]


def conv_cases(transposed):
    arrays = []
    for case in (CONVT3D if transposed else CONV3D):
        if transposed:
            name, n, c, o, sp, k, s, p, op, g, d, bias = case
            w = rand(c, o // g, *triple(k))
        else:
            name, n, c, o, sp, k, s, p, d, g, bias = case
            op = 0
            w = rand(o, c // g, *triple(k))
        x = rand(n, c, *sp)
        b = rand(o) if bias else None
        tx, tw = t64(x), t64(w)
        tb = t64(b) if bias else None
        if transposed:
            y = F.conv_transpose3d(tx, tw, tb, stride=s, padding=p, output_padding=op, groups=g, dilation=d)
        else:
            y = F.conv3d(tx, tw, tb, stride=s, padding=p, dilation=d, groups=g)
        dy = rand(*y.shape)
        y.backward(torch.tensor(dy.astype(np.float64)))
        params = [*triple(s), *triple(p), *triple(d), *triple(op), g, int(bias)]
        arrays += [(f"{name}/params", np.array(params, np.float32)), (f"{name}/x", x), (f"{name}/w", w)]
        if bias:
            arrays.append((f"{name}/b", b))
        arrays += [(f"{name}/dy", dy), (f"{name}/y", f32(y)), (f"{name}/dx", f32(tx.grad)),
                   (f"{name}/dw", f32(tw.grad))]
        if bias:
            arrays.append((f"{name}/db", f32(tb.grad)))
    return arrays


# ------------------------------------------------------------------------------- instance norm
# params: eps, affine, activation (0 none, 1 ReLU, 2 LeakyReLU), slope (4 floats)
# tensors: x, gamma, beta (affine), dy; y, dx, dgamma, dbeta (affine)
INSTNORM = [  # name, shape, affine, activation, slope, input offset
    ("affine", (2, 3, 5, 4, 6), True, 0, 0.0, 0.0),
    ("plain", (1, 4, 3, 5, 4), False, 0, 0.0, 0.0),
    ("affine_leaky_relu", (2, 2, 4, 4, 4), True, 2, 0.01, 0.0),
    ("affine_relu_mean5", (1, 3, 6, 3, 5), True, 1, 0.0, 5.0),
]


def instance_norm_cases():
    arrays = []
    for name, shape, affine, act, slope, offset in INSTNORM:
        c, eps = shape[1], 1e-5
        x = rand(*shape) + np.float32(offset)
        gam, bet = (rand(c, lo=0.5, hi=1.5), rand(c)) if affine else (None, None)
        tx = t64(x)
        tg, tb = (t64(gam), t64(bet)) if affine else (None, None)
        y = F.instance_norm(tx, weight=tg, bias=tb, eps=eps)
        if act == 1:
            y = F.relu(y)
        elif act == 2:
            y = F.leaky_relu(y, slope)
        dy = rand(*shape)
        y.backward(torch.tensor(dy.astype(np.float64)))
        arrays += [(f"{name}/params", np.array([eps, int(affine), act, slope], np.float32)), (f"{name}/x", x)]
        if affine:
            arrays += [(f"{name}/gamma", gam), (f"{name}/beta", bet)]
        arrays += [(f"{name}/dy", dy), (f"{name}/y", f32(y)), (f"{name}/dx", f32(tx.grad))]
        if affine:
            arrays += [(f"{name}/dgamma", f32(tg.grad)), (f"{name}/dbeta", f32(tb.grad))]
    return arrays


NORMS = [  # name, kind (0 batch norm training, 1 batch norm inference, 2 group norm, 3 channel layer
    # norm), shape, affine, activation, slope, groups
    ("batch_train_affine_leaky", 0, (2, 3, 3, 4, 5), True, 2, 0.01, 0),
    ("batch_train_plain", 0, (1, 4, 3, 3, 3), False, 0, 0.0, 0),
    ("batch_eval_affine_relu", 1, (2, 3, 3, 4, 5), True, 1, 0.0, 0),
    ("group_affine", 2, (2, 6, 3, 4, 5), True, 0, 0.0, 3),
    ("group_plain_relu", 2, (1, 4, 3, 3, 3), False, 1, 0.0, 2),
    ("layer_affine", 3, (2, 5, 3, 4, 3), True, 0, 0.0, 0),
]


def norm_cases():
    """params: kind, eps, affine, activation, slope, groups, momentum. Batch norm also holds
    running_mean/running_var before the forward and running_mean_out/running_var_out after."""
    arrays = []
    for name, kind, shape, affine, act, slope, groups in NORMS:
        c = shape[1]
        eps, momentum = (1e-6 if kind == 3 else 1e-5), 0.1
        x = rand(*shape) + np.arange(c, dtype=np.float32).reshape(1, c, 1, 1, 1)
        gam, bet = (rand(c, lo=0.5, hi=1.5), rand(c)) if affine else (None, None)
        tx = t64(x)
        tg, tb = (t64(gam), t64(bet)) if affine else (None, None)
        extra = []
        if kind in (0, 1):
            rm, rv = rand(c, lo=-0.5, hi=0.5), rand(c, lo=0.5, hi=1.5)
            trm, trv = torch.tensor(rm.astype(np.float64)), torch.tensor(rv.astype(np.float64))
            y = F.batch_norm(tx, trm, trv, tg, tb, training=kind == 0, momentum=momentum, eps=eps)
            extra = [(f"{name}/running_mean", rm), (f"{name}/running_var", rv),
                     (f"{name}/running_mean_out", f32(trm)), (f"{name}/running_var_out", f32(trv))]
        elif kind == 2:
            y = F.group_norm(tx, groups, tg, tb, eps=eps)
        else:
            y = F.layer_norm(tx.movedim(1, -1), (c,), tg, tb, eps=eps).movedim(-1, 1)
        if act == 1:
            y = F.relu(y)
        elif act == 2:
            y = F.leaky_relu(y, slope)
        dy = rand(*shape)
        y.backward(torch.tensor(dy.astype(np.float64)))
        arrays += [(f"{name}/params", np.array([kind, eps, int(affine), act, slope, groups, momentum], np.float32)),
                   (f"{name}/x", x)]
        if affine:
            arrays += [(f"{name}/gamma", gam), (f"{name}/beta", bet)]
        arrays += extra + [(f"{name}/dy", dy), (f"{name}/y", f32(y)), (f"{name}/dx", f32(tx.grad))]
        if affine:
            arrays += [(f"{name}/dgamma", f32(tg.grad)), (f"{name}/dbeta", f32(tb.grad))]
    return arrays


FILES = {
    "conv3d.vxg": lambda: conv_cases(False),
    "conv_transpose3d.vxg": lambda: conv_cases(True),
    "instance_norm.vxg": instance_norm_cases,
    "norm.vxg": norm_cases,  # batch, group and channel layer norm
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    os.makedirs(out, exist_ok=True)
    total = 0
    for fname, make in FILES.items():
        size = write(os.path.join(out, fname), make())
        total += size
        print(f"{fname}: {size} bytes")
    print(f"total {total} bytes")
    if total > 200 * 1024:
        print("warning: the golden files exceed 200 KB; make the cases smaller")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
