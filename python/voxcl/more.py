"""More ops on numpy arrays, named like torch.nn.functional: prelu, gelu, softmax_backward
(on the device), broadcast add / mul / scale, max_pool3d, avg_pool3d, interpolate, pad, crop,
split, mse_loss, kl_loss, clip_grad_norm_, clip_grad_value_. Each `<op>_backward` returns what
torch.autograd gives for L = sum(grad_y * op(...)). Conventions as in ops.py (float32, NCDHW,
new arrays; VoxclError for the library's refusals, ValueError for problems found here).
"""
import ctypes

import numpy as np

from . import _lib
from ._context import InOut, Out, Session, f32, run

__all__ = [
    "prelu", "prelu_backward", "gelu", "gelu_backward", "softmax_backward",
    "add", "add_backward", "mul", "mul_backward", "scale", "scale_backward",
    "max_pool3d", "max_pool3d_backward", "avg_pool3d", "avg_pool3d_backward",
    "interpolate", "interpolate_backward", "pad", "pad_backward", "crop", "crop_backward",
    "split", "split_backward", "mse_loss", "mse_loss_backward", "kl_loss", "kl_loss_backward",
    "clip_grad_norm_", "clip_grad_value_",
]

T, I, F = ctypes.c_void_p, ctypes.c_int, ctypes.c_float
IARR, FARR = ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_float)


class PoolParams(ctypes.Structure):
    _fields_ = [("kernel", ctypes.c_int * 3), ("stride", ctypes.c_int * 3), ("padding", ctypes.c_int * 3),
                ("count_include_pad", ctypes.c_int)]


_SIGNATURES = [
    ("vx_prelu_forward", I, [T, T, T, T]),
    ("vx_prelu_backward", I, [T, T, T, T, T, T, I]),
    ("vx_gelu_forward", I, [T, T, T]),
    ("vx_gelu_backward", I, [T, T, T, T, I]),
    ("vx_softmax_backward", I, [T, T, T, T, I]),
    ("vx_add_broadcast", I, [T, T, T, T]),
    ("vx_mul_broadcast", I, [T, T, T, T]),
    ("vx_add_broadcast_backward", I, [T, T, T, T, I]),
    ("vx_mul_broadcast_backward", I, [T, T, T, T, T, T, I]),
    ("vx_scale", I, [T, F, T, T]),
    ("vx_scale_backward", I, [T, F, T, T, I]),
    ("vx_max_pool3d_forward", I, [T, T, ctypes.POINTER(PoolParams), T]),
    ("vx_max_pool3d_backward", I, [T, T, T, ctypes.POINTER(PoolParams), T, I]),
    ("vx_avg_pool3d_forward", I, [T, T, ctypes.POINTER(PoolParams), T]),
    ("vx_avg_pool3d_backward", I, [T, T, ctypes.POINTER(PoolParams), T, I]),
    ("vx_interpolate_forward", I, [T, T, I, FARR, T]),
    ("vx_interpolate_backward", I, [T, T, I, FARR, T, I]),
    ("vx_pad_forward", I, [T, T, IARR, IARR, F, T]),
    ("vx_pad_backward", I, [T, T, IARR, IARR, T, I]),
    ("vx_crop_forward", I, [T, T, IARR, T]),
    ("vx_crop_backward", I, [T, T, IARR, T, I]),
    ("vx_split_channels", I, [T, T, T, T]),
    ("vx_split_channels_backward", I, [T, T, T, T, I]),
    ("vx_mse_loss", I, [T, T, T, F, FARR, T, I]),
    ("vx_kl_loss", I, [T, T, T, F, FARR, T, T, I]),
    ("vx_clip_grad_norm", I, [T, T, F, FARR]),
    ("vx_clip_grad_value", I, [T, T, F]),
]
for _sig in _SIGNATURES:
    _lib.declare(*_sig)


def _five(x, op, what="x"):
    x = f32(x)
    if x.ndim != 5:
        raise ValueError(f"{op}: {what} must be 5-D [N, C, D, H, W], got shape {x.shape}")
    return x


def _triple(v, what):
    if isinstance(v, (int, np.integer)):
        return (int(v),) * 3
    t = tuple(int(i) for i in v)
    if len(t) != 3:
        raise ValueError(f"{what} must be an int or 3 ints, got {v!r}")
    return t


# ------------------------------------------------------------------------------- activations
def prelu(x, weight):
    """torch.nn.functional.prelu. weight: [C] or [1]."""
    x = _five(x, "prelu")
    return run("vx_prelu_forward", x, f32(weight), Out(x.shape))


def prelu_backward(x, weight, grad_y):
    """(dx, dweight)."""
    x, w = _five(x, "prelu_backward"), f32(weight)
    return run("vx_prelu_backward", x, w, f32(grad_y), Out(x.shape), Out(w.shape), 0)


def gelu(x, approximate="none"):
    """torch.nn.functional.gelu (erf form only)."""
    if approximate != "none":
        raise ValueError("gelu: only approximate='none' (the erf form) is supported")
    x = f32(x)
    return run("vx_gelu_forward", x, Out(x.shape))


def gelu_backward(x, grad_y, approximate="none"):
    if approximate != "none":
        raise ValueError("gelu_backward: only approximate='none' (the erf form) is supported")
    x = f32(x)
    return run("vx_gelu_backward", x, f32(grad_y).reshape(x.shape), Out(x.shape), 0)


def softmax_backward(x, grad_y, dim=1):
    """dL/dx of softmax over channels (dim=1), on the device."""
    x = f32(x)
    if dim not in (1, 1 - x.ndim) or x.ndim < 2:
        raise ValueError(f"softmax_backward: only dim=1 (channels) is supported, got dim={dim}")
    xs = x.reshape(x.shape[0], x.shape[1], -1)
    with Session() as s:
        tx, ty, tdx = s.up(xs), s.out(xs.shape), s.out(xs.shape)
        s.call("vx_softmax_forward", tx, ty)
        s.call("vx_softmax_backward", ty, s.up(f32(grad_y).reshape(xs.shape)), tdx, 0)
        return s.get(tdx).reshape(x.shape)


# ------------------------------------------------------------------------------- broadcasting
def add(a, b):
    """a + b with b of a's shape, [N, C, 1, 1, 1], [C] / [1, C, 1, 1, 1] or one value."""
    a = _five(a, "add", "a")
    return run("vx_add_broadcast", a, f32(b), Out(a.shape))


def add_backward(a, b, grad_y):
    """(da, db); db summed over the broadcast dimensions, shaped like b."""
    a, b = _five(a, "add_backward", "a"), f32(b)
    return run("vx_add_broadcast_backward", f32(grad_y), Out(a.shape), Out(b.shape), 0)


def mul(a, b):
    a = _five(a, "mul", "a")
    return run("vx_mul_broadcast", a, f32(b), Out(a.shape))


def mul_backward(a, b, grad_y):
    a, b = _five(a, "mul_backward", "a"), f32(b)
    return run("vx_mul_broadcast_backward", a, b, f32(grad_y), Out(a.shape), Out(b.shape), 0)


def scale(x, s):
    x = f32(x)
    return run("vx_scale", float(s), x, Out(x.shape))


def scale_backward(x, s, grad_y):
    x = f32(x)
    return run("vx_scale_backward", float(s), f32(grad_y).reshape(x.shape), Out(x.shape), 0)


# ------------------------------------------------------------------------------- pooling
def _pool_params(kernel_size, stride, padding, count_include_pad=True):
    p = PoolParams()
    k = _triple(kernel_size, "kernel_size")
    p.kernel[:] = k
    p.stride[:] = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) else _triple(stride, "stride")
    p.padding[:] = _triple(padding, "padding")
    p.count_include_pad = 1 if count_include_pad else 0
    return p


def _pool_shape(op, x, p):
    out = []
    for a in range(3):
        n = (x.shape[2 + a] + 2 * p.padding[a] - p.kernel[a]) // max(p.stride[a], 1) + 1
        if n <= 0 or x.shape[2 + a] + 2 * p.padding[a] < p.kernel[a]:
            raise ValueError(f"{op}: input size {x.shape[2 + a]} along axis {2 + a} is smaller than the kernel "
                             f"{p.kernel[a]} (padding {p.padding[a]})")
        out.append(n)
    return x.shape[:2] + tuple(out)


def max_pool3d(x, kernel_size, stride=None, padding=0):
    """torch.nn.functional.max_pool3d (dilation 1, ceil_mode False)."""
    x = _five(x, "max_pool3d")
    p = _pool_params(kernel_size, stride, padding)
    return run("vx_max_pool3d_forward", x, ctypes.byref(p), Out(_pool_shape("max_pool3d", x, p)))


def max_pool3d_backward(x, grad_y, kernel_size, stride=None, padding=0):
    x = _five(x, "max_pool3d_backward")
    p = _pool_params(kernel_size, stride, padding)
    return run("vx_max_pool3d_backward", x, f32(grad_y), ctypes.byref(p), Out(x.shape), 0)


def avg_pool3d(x, kernel_size, stride=None, padding=0, count_include_pad=True):
    """torch.nn.functional.avg_pool3d (ceil_mode False, no divisor_override)."""
    x = _five(x, "avg_pool3d")
    p = _pool_params(kernel_size, stride, padding, count_include_pad)
    return run("vx_avg_pool3d_forward", x, ctypes.byref(p), Out(_pool_shape("avg_pool3d", x, p)))


def avg_pool3d_backward(x, grad_y, kernel_size, stride=None, padding=0, count_include_pad=True):
    x = _five(x, "avg_pool3d_backward")
    p = _pool_params(kernel_size, stride, padding, count_include_pad)
    return run("vx_avg_pool3d_backward", f32(grad_y), ctypes.byref(p), Out(x.shape), 0)


# ------------------------------------------------------------------------------- resizing
_MODES = {"nearest": 0, "trilinear": 1}


def _interp_args(op, x, size, scale_factor, mode, align_corners):
    if mode not in _MODES:
        raise ValueError(f"{op}: mode must be 'nearest' or 'trilinear', got {mode!r}")
    if align_corners:
        raise ValueError(f"{op}: align_corners=True is not supported")
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size and scale_factor")
    if size is not None:
        out = _triple(size, "size")
        sc = (ctypes.c_float * 3)(0, 0, 0)
    else:
        f = (float(scale_factor),) * 3 if np.isscalar(scale_factor) else tuple(float(v) for v in scale_factor)
        if len(f) != 3:
            raise ValueError(f"{op}: scale_factor must be a number or 3 numbers")
        sc = (ctypes.c_float * 3)(*f)
        out = tuple(int(np.floor(x.shape[2 + a] * f[a])) for a in range(3))  # in double, as torch
    return x.shape[:2] + out, sc, _MODES[mode]


def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """torch.nn.functional.interpolate for 5-D input, modes 'nearest' and 'trilinear'
    (align_corners False)."""
    x = _five(x, "interpolate")
    shape, sc, m = _interp_args("interpolate", x, size, scale_factor, mode, align_corners)
    return run("vx_interpolate_forward", x, m, sc, Out(shape))


def interpolate_backward(x, grad_y, size=None, scale_factor=None, mode="nearest", align_corners=None):
    x = _five(x, "interpolate_backward")
    _, sc, m = _interp_args("interpolate_backward", x, size, scale_factor, mode, align_corners)
    return run("vx_interpolate_backward", f32(grad_y), m, sc, Out(x.shape), 0)


# ------------------------------------------------------------------------------- shapes
def _pad_lists(pad):
    pad = [int(v) for v in pad]
    if len(pad) % 2 or len(pad) > 6:
        raise ValueError(f"pad: expected 2, 4 or 6 values (W first, as torch), got {pad}")
    pad += [0] * (6 - len(pad))
    before = [pad[4], pad[2], pad[0]]
    after = [pad[5], pad[3], pad[1]]
    return (ctypes.c_int * 3)(*before), (ctypes.c_int * 3)(*after), before, after


def pad(x, pad, mode="constant", value=0.0):
    """torch.nn.functional.pad, constant mode, over the last three dims; pad lists W first."""
    if mode != "constant":
        raise ValueError("pad: only mode='constant' is supported")
    x = _five(x, "pad")
    b, a, bl, al = _pad_lists(pad)
    shape = x.shape[:2] + tuple(x.shape[2 + i] + bl[i] + al[i] for i in range(3))
    return run("vx_pad_forward", x, b, a, float(value), Out(shape))


def pad_backward(x, grad_y, pad):
    x = _five(x, "pad_backward")
    b, a, _, _ = _pad_lists(pad)
    return run("vx_pad_backward", f32(grad_y), b, a, Out(x.shape), 0)


def crop(x, start, size):
    """x[n0:n0+sn, c0:c0+sc, d0:..., h0:..., w0:...] with start and size of 5 ints each."""
    x = _five(x, "crop")
    return run("vx_crop_forward", x, (ctypes.c_int * 5)(*[int(v) for v in start]), Out(tuple(int(v) for v in size)))


def crop_backward(x, grad_y, start):
    x = _five(x, "crop_backward")
    return run("vx_crop_backward", f32(grad_y), (ctypes.c_int * 5)(*[int(v) for v in start]), Out(x.shape), 0)


def split(x, split_size_or_sections, dim=1):
    """torch.split along channels into two parts: sections [Ca, Cb] (or an int Ca)."""
    x = _five(x, "split")
    if dim != 1:
        raise ValueError("split: only dim=1 (channels) is supported")
    s = split_size_or_sections
    ca = int(s) if np.isscalar(s) else int(s[0])
    cb = x.shape[1] - ca
    if not np.isscalar(s) and (len(s) != 2 or int(s[1]) != cb):
        raise ValueError(f"split: sections {s} do not make {x.shape[1]} channels in two parts")
    return run("vx_split_channels", x, Out((x.shape[0], ca) + x.shape[2:]), Out((x.shape[0], cb) + x.shape[2:]))


def split_backward(grad_a, grad_b):
    da, db = _five(grad_a, "split_backward", "grad_a"), _five(grad_b, "split_backward", "grad_b")
    shape = (da.shape[0], da.shape[1] + db.shape[1]) + da.shape[2:]
    return run("vx_split_channels_backward", da, db, Out(shape), 0)


# ------------------------------------------------------------------------------- losses, clipping
def mse_loss(input, target):
    """torch.nn.functional.mse_loss (reduction 'mean')."""
    v = ctypes.c_float()
    run("vx_mse_loss", f32(input), f32(target), 1.0, ctypes.byref(v), None, 0)
    return v.value


def mse_loss_backward(input, target, grad_output=1.0):
    x = f32(input)
    v = ctypes.c_float()
    return run("vx_mse_loss", x, f32(target), float(grad_output), ctypes.byref(v), Out(x.shape), 0)


def kl_loss(mu, sigma):
    """The VAE's KL term: mean(mu^2 + sigma^2 - log sigma^2 - 1)."""
    v = ctypes.c_float()
    run("vx_kl_loss", f32(mu), f32(sigma), 1.0, ctypes.byref(v), None, None, 0)
    return v.value


def kl_loss_backward(mu, sigma, grad_output=1.0):
    """(dmu, dsigma)."""
    m = f32(mu)
    v = ctypes.c_float()
    return run("vx_kl_loss", m, f32(sigma), float(grad_output), ctypes.byref(v), Out(m.shape), Out(m.shape), 0)


def clip_grad_norm_(grad, max_norm):
    """torch.nn.utils.clip_grad_norm_ over one float32 array, updated in place; returns the
    norm before clipping."""
    v = ctypes.c_float()
    run("vx_clip_grad_norm", InOut(grad.reshape(-1) if grad.ndim > 5 else grad, "grad"), float(max_norm),
        ctypes.byref(v))
    return v.value


def clip_grad_value_(grad, clip_value):
    """torch.nn.utils.clip_grad_value_ on a float32 array in place."""
    run("vx_clip_grad_value", InOut(grad, "grad"), float(clip_value))
