"""python/voxcl/more.py against PyTorch: prelu, gelu, softmax_backward, broadcast add / mul /
scale, max_pool3d, avg_pool3d, interpolate (nearest, trilinear), pad, crop, split, mse_loss,
kl_loss, clip_grad_norm_, clip_grad_value_, forward and backward, plus a few refusals.

    /usr/bin/python3 tests/test_python_more.py [-v] [-k SUBSTRING]

Conventions as tests/test_python.py: references by torch in float64 from exactly the float32
inputs; exits 77 without numpy, torch or an OpenCL device; "N passed, M failed" last.
Tolerances: elementwise and copies (prelu, scale, pad, crop, split, nearest forward, max pool):
rtol 1e-6, atol 1e-7; gelu, trilinear, average pooling, sums over broadcast dimensions and
gathers of several gradients: rtol 1e-5, atol 1e-5; losses and the gradient norm: 1e-5.
Nearest interpolation compares against torch in float32 (torch computes its source index in
float; float64 can pick another neighbour at a non-integer scale).
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
pycheck.seed(4321)

ELT = dict(rtol=1e-6, atol=1e-7)
SMOOTH = dict(rtol=1e-5, atol=1e-5)


def grads(f, *arrays):
    """torch float64: y = f(*inputs) and a function giving the gradients for grad_y."""
    ts = [t64(a, True) for a in arrays]
    y = f(*ts)

    def back(gy):
        return torch.autograd.grad(y, ts, t64(gy))
    return y, back


def test_activations():
    x = rand(2, 3, 4, 5, 6)
    x[np.abs(x) < 1e-3] = 0.5
    for w in (rand(3, lo=0.0, hi=0.5), rand(1, lo=0.0, hi=0.5)):
        y, back = grads(F.prelu, x, w)
        gy = rand(*y.shape)
        close(f"prelu weight {w.shape}", voxcl.prelu(x, w), y, **ELT)
        dx, dw = voxcl.prelu_backward(x, w, gy)
        rx, rw = back(gy)
        close("prelu dx", dx, rx, **ELT)
        close("prelu dweight", dw, rw, **SMOOTH)
    x4 = rand(2, 3, 4, 5, 6, lo=-4, hi=4)
    y, back = grads(F.gelu, x4)
    gy = rand(*y.shape)
    close("gelu", voxcl.gelu(x4), y, **SMOOTH)
    close("gelu backward", voxcl.gelu_backward(x4, gy), back(gy)[0], **SMOOTH)
    y, back = grads(lambda t: F.softmax(t, dim=1), x4)
    close("softmax backward (device)", voxcl.softmax_backward(x4, gy), back(gy)[0], **SMOOTH)


def test_broadcast():
    a = rand(2, 3, 4, 5, 3)
    for bshape, tshape in (((2, 3, 4, 5, 3), None), ((2, 3, 1, 1, 1), None), ((1, 3, 1, 1, 1), None),
                           ((3,), (1, 3, 1, 1, 1)), ((1,), None)):
        b = rand(*bshape)
        for name, op, vop, vback in (("add", torch.add, voxcl.add, voxcl.add_backward),
                                     ("mul", torch.mul, voxcl.mul, voxcl.mul_backward)):
            y, back = grads(lambda u, v: op(u, v.reshape(tshape) if tshape else v), a, b)
            gy = rand(*y.shape)
            close(f"{name} b{bshape}", vop(a, b), y, **ELT)
            da, db = vback(a, b, gy)
            ra, rb = back(gy)
            close(f"{name} b{bshape} da", da, ra, **ELT)
            close(f"{name} b{bshape} db", db, rb, **SMOOTH)
    y, back = grads(lambda u: 0.3 * u, a)
    close("scale", voxcl.scale(a, 0.3), y, **ELT)
    gy = rand(*a.shape)
    close("scale backward", voxcl.scale_backward(a, 0.3, gy), back(gy)[0], **ELT)


def test_pool():
    x = pycheck.RNG.permutation(2 * 3 * 7 * 6 * 9).astype(np.float32).reshape(2, 3, 7, 6, 9) / 100.0
    for k, s, p in ((2, 2, 0), (3, 2, 1), (3, 1, 1), ((1, 2, 2), (1, 2, 2), 0)):
        y, back = grads(lambda t: F.max_pool3d(t, k, s, p), x)
        gy = rand(*y.shape)
        close(f"max_pool3d k{k} s{s} p{p}", voxcl.max_pool3d(x, k, s, p), y, **ELT)
        close(f"max_pool3d backward k{k} s{s} p{p}", voxcl.max_pool3d_backward(x, gy, k, s, p), back(gy)[0], **SMOOTH)
        for inc in (True, False):
            y, back = grads(lambda t: F.avg_pool3d(t, k, s, p, count_include_pad=inc), x)
            close(f"avg_pool3d k{k} s{s} p{p} include_pad {inc}", voxcl.avg_pool3d(x, k, s, p, count_include_pad=inc),
                  y, **SMOOTH)
            close(f"avg_pool3d backward k{k} include_pad {inc}",
                  voxcl.avg_pool3d_backward(x, gy, k, s, p, count_include_pad=inc), back(gy)[0], **SMOOTH)
    xt = np.full((1, 1, 4, 4, 4), 0.5, np.float32)
    y, back = grads(lambda t: F.max_pool3d(t, 2, 2), xt)
    gy = rand(*y.shape)
    close("max_pool3d backward ties (first element)", voxcl.max_pool3d_backward(xt, gy, 2, 2), back(gy)[0], **ELT)


def test_interpolate():
    x = rand(2, 3, 10, 10, 10)
    cases = [dict(scale_factor=2), dict(scale_factor=(1.5, 0.5, 3.0)), dict(scale_factor=(1.7, 2.3, 0.6)),
             dict(size=(11, 9, 13)), dict(size=(2, 3, 3)), dict(scale_factor=(0.7, 1.1, 1.3))]
    for kw in cases:
        for mode in ("nearest", "trilinear"):
            tkw = dict(kw)
            if "scale_factor" in tkw and not np.isscalar(tkw["scale_factor"]):
                tkw["scale_factor"] = tuple(tkw["scale_factor"])
            extra = dict(align_corners=False) if mode == "trilinear" else {}
            if mode == "nearest":  # torch's float32 index computation, see the top
                xt = torch.tensor(x, requires_grad=True)
                y = F.interpolate(xt, mode=mode, **tkw, **extra)
                gy = rand(*y.shape)
                (rx,) = torch.autograd.grad(y, xt, torch.tensor(gy))
                tol = ELT
            else:
                y, back = grads(lambda t: F.interpolate(t, mode=mode, **tkw, **extra), x)
                gy = rand(*y.shape)
                rx = back(gy)[0]
                tol = SMOOTH
            close(f"interpolate {mode} {kw}", voxcl.interpolate(x, mode=mode, **kw), y, **tol)
            close(f"interpolate backward {mode} {kw}", voxcl.interpolate_backward(x, gy, mode=mode, **kw), rx, **SMOOTH)


def test_shapes():
    x = rand(2, 3, 4, 5, 6)
    pad = (1, 2, 0, 1, 2, 0)
    y, back = grads(lambda t: F.pad(t, pad, value=0.25), x)
    gy = rand(*y.shape)
    close("pad", voxcl.pad(x, pad, value=0.25), y, **ELT)
    close("pad backward", voxcl.pad_backward(x, gy, pad), back(gy)[0], **ELT)
    start, size = (1, 1, 1, 0, 2), (1, 2, 2, 4, 3)
    sl = tuple(slice(a, a + b) for a, b in zip(start, size))
    y, back = grads(lambda t: t[sl], x)
    gy = rand(*y.shape)
    close("crop", voxcl.crop(x, start, size), y, **ELT)
    close("crop backward", voxcl.crop_backward(x, gy, start), back(gy)[0], **ELT)
    a, b = voxcl.split(x, [1, 2])
    ra, rb = torch.split(t64(x), [1, 2], dim=1)
    close("split a", a, ra, **ELT)
    close("split b", b, rb, **ELT)
    ga, gb = rand(*a.shape), rand(*b.shape)
    close("split backward", voxcl.split_backward(ga, gb), np.concatenate([ga, gb], axis=1), **ELT)


def test_losses_and_clipping():
    a, t = rand(2, 3, 4, 5, 6), rand(2, 3, 4, 5, 6)
    y, back = grads(F.mse_loss, a, t)
    close("mse_loss", np.float32(voxcl.mse_loss(a, t)), y, **SMOOTH)
    close("mse_loss backward", voxcl.mse_loss_backward(a, t, 0.1), back(0.1)[0], **SMOOTH)
    mu, sg = rand(2, 256), rand(2, 256, lo=0.2, hi=1.5)
    y, back = grads(lambda m, s: torch.mean(m * m + s * s - torch.log(s * s) - 1), mu, sg)
    close("kl_loss", np.float32(voxcl.kl_loss(mu, sg)), y, **SMOOTH)
    dmu, dsg = voxcl.kl_loss_backward(mu, sg, 0.1)
    rmu, rsg = back(0.1)
    close("kl dmu", dmu, rmu, **SMOOTH)
    close("kl dsigma", dsg, rsg, **SMOOTH)
    g = rand(10007)
    p = torch.nn.Parameter(torch.zeros(10007))
    p.grad = torch.tensor(g.copy())
    rn = torch.nn.utils.clip_grad_norm_([p], 1.0)
    gv = g.copy()
    n = voxcl.clip_grad_norm_(gv, 1.0)
    close("clip_grad_norm_ norm", np.float32(n), rn, **SMOOTH)
    close("clip_grad_norm_ grad", gv, p.grad, **SMOOTH)
    p.grad = torch.tensor(g.copy())
    torch.nn.utils.clip_grad_value_([p], 0.1)
    gv = g.copy()
    voxcl.clip_grad_value_(gv, 0.1)
    close("clip_grad_value_", gv, p.grad, **ELT)


def test_refusals():
    x = rand(1, 2, 3, 4, 5)
    raises("prelu wrong slope count", voxcl.VoxclError, voxcl.prelu, x, rand(3), status="VX_ERR_SHAPE", text="slope")
    raises("add b not broadcastable", voxcl.VoxclError, voxcl.add, x, rand(1, 2, 3, 1, 1), status="VX_ERR_SHAPE",
           text="broadcast")
    raises("avg_pool3d padding > k/2", voxcl.VoxclError, voxcl.avg_pool3d, x, 2, 2, 2, status="VX_ERR_INVALID_ARGUMENT",
           text="padding")
    raises("interpolate bad mode", ValueError, voxcl.interpolate, x, size=4, mode="bicubic")
    raises("kl sigma 0", voxcl.VoxclError, voxcl.kl_loss, x, np.zeros_like(x), status="VX_ERR_NOT_FINITE")


TESTS = [test_activations, test_broadcast, test_pool, test_interpolate, test_shapes, test_losses_and_clipping,
         test_refusals]


def main():
    return pycheck.run(voxcl, TESTS)


if __name__ == "__main__":
    sys.exit(main())
