"""Batch, group and channel layer normalisation, forward and backward, on numpy arrays.

Named and shaped like torch.nn.functional (batch_norm, group_norm); layer_norm_channels is
3D UX-Net's channels-first LayerNorm: at every voxel the C channels are normalised, i.e.
F.layer_norm(x.movedim(1, -1), (C,), weight, bias, eps).movedim(-1, 1), eps 1e-6 by default.
Arrays are float32 NCDHW (any number of spatial dims, [N, C, ...]); results are new arrays.
batch_norm and group_norm take an optional fused activation (None, 'relu', 'leaky_relu' with
negative_slope) applied after the affine step, as instance_norm does.
Each `<op>_backward` returns (dx, dweight, dbias) for L = sum(grad_y * op(...)), dweight and
dbias None when weight and bias are both None; it recomputes the forward on the device.
"""
import numpy as np

from . import _lib
from ._context import Session, f32
from ._lib import CTX, ST, F, I, T
from .ops import _activation, _affine, _as_ncs

__all__ = ["batch_norm", "batch_norm_backward", "group_norm", "group_norm_backward", "layer_norm_channels",
           "layer_norm_channels_backward"]

# The C functions of this module (declared here, beside their only users).
SIGNATURES = [
    ("vx_batch_norm_forward", ST, [CTX, T, T, T, T, T, I, F, F, I, F, T, T]),
    ("vx_batch_norm_backward", ST, [CTX, T, T, T, T, T, I, I, F, T, T, T, I]),
    ("vx_group_norm_forward", ST, [CTX, T, I, T, T, F, I, F, T, T]),
    ("vx_group_norm_backward", ST, [CTX, T, I, T, T, T, T, I, F, T, T, T, I]),
    ("vx_layer_norm_channels_forward", ST, [CTX, T, T, T, F, T, T]),
    ("vx_layer_norm_channels_backward", ST, [CTX, T, T, T, T, T, T, T, I]),
]
for _sig in SIGNATURES:
    _lib.declare(*_sig)


def _running(a, c, what, op, inplace):
    if a is None:
        return None
    if inplace and not (isinstance(a, np.ndarray) and a.dtype == np.float32 and a.flags.c_contiguous):
        raise ValueError(f"{op}: {what} is updated in place in training mode and must be a C-contiguous float32 "
                         f"numpy array, got {type(a).__name__}")
    a = f32(a).reshape(-1)
    if a.size != c:
        raise ValueError(f"{op}: {what} has {a.size} elements, expected {c} (one per channel)")
    return a


# ------------------------------------------------------------------------------- batch norm
def batch_norm(x, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5,
               activation=None, negative_slope=0.01):
    """torch.nn.functional.batch_norm. training=True: batch statistics (biased variance to
    normalise); running_mean/running_var (float32 arrays or None) are updated in place,
    r = (1 - momentum) r + momentum * batch, with the unbiased variance. training=False: the
    running statistics (required) normalise."""
    op = "batch_norm"
    xs = _as_ncs(x, op)
    c = xs.shape[1]
    rm = _running(running_mean, c, "running_mean", op, training)
    rv = _running(running_var, c, "running_var", op, training)
    g, b = _affine(weight, bias, c)
    with Session() as s:
        tx, ty, tsave = s.up(xs), s.out(xs.shape), s.out((2 * c,))
        trm, trv = s.up(rm), s.up(rv)
        s.call("vx_batch_norm_forward", tx, s.up(g), s.up(b), trm, trv, int(bool(training)), float(momentum),
               float(eps), _activation(activation), float(negative_slope), ty, tsave)
        if training and rm is not None:
            s.get(trm, into=running_mean.reshape(-1))
            s.get(trv, into=running_var.reshape(-1))
        return s.get(ty).reshape(np.shape(x))


def batch_norm_backward(x, grad_y, running_mean, running_var, weight=None, bias=None, training=False, eps=1e-5,
                        activation=None, negative_slope=0.01):
    """Gradients of batch_norm: (dx, dweight, dbias). The running statistics are only read
    (training=False uses them as constants; training=True ignores them)."""
    op = "batch_norm_backward"
    xs = _as_ncs(x, op)
    c = xs.shape[1]
    rm = _running(running_mean, c, "running_mean", op, False)
    rv = _running(running_var, c, "running_var", op, False)
    dy = f32(grad_y).reshape(xs.shape)
    g, b = _affine(weight, bias, c)
    act = _activation(activation)
    with Session() as s:
        tx, tg, tb = s.up(xs), s.up(g), s.up(b)
        ty, tsave = s.out(xs.shape), s.out((2 * c,))
        # momentum 0: the forward leaves the (device copies of the) running statistics as they are
        s.call("vx_batch_norm_forward", tx, tg, tb, s.up(rm), s.up(rv), int(bool(training)), 0.0, float(eps), act,
               float(negative_slope), ty, tsave)
        tdx = s.out(xs.shape)
        tdg, tdb = (s.out((c,)), s.out((c,))) if g is not None else (None, None)
        s.call("vx_batch_norm_backward", tx, ty, s.up(dy), tg, tsave, int(bool(training)), act,
               float(negative_slope), tdx, tdg, tdb, 0)
        return s.get(tdx).reshape(np.shape(x)), s.get(tdg), s.get(tdb)


# ------------------------------------------------------------------------------- group norm
def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5, activation=None, negative_slope=0.01):
    """torch.nn.functional.group_norm: per sample, statistics over C/num_groups channels and
    all voxels (biased variance), then weight[c], bias[c]. num_groups must divide C."""
    xs = _as_ncs(x, "group_norm")
    n, c = xs.shape[:2]
    g, b = _affine(weight, bias, c)
    with Session() as s:
        tx, ty, tsave = s.up(xs), s.out(xs.shape), s.out((2 * n * max(int(num_groups), 1),))
        s.call("vx_group_norm_forward", tx, int(num_groups), s.up(g), s.up(b), float(eps), _activation(activation),
               float(negative_slope), ty, tsave)
        return s.get(ty).reshape(np.shape(x))


def group_norm_backward(x, grad_y, num_groups, weight=None, bias=None, eps=1e-5, activation=None,
                        negative_slope=0.01):
    """Gradients of group_norm: (dx, dweight, dbias)."""
    xs = _as_ncs(x, "group_norm_backward")
    n, c = xs.shape[:2]
    dy = f32(grad_y).reshape(xs.shape)
    g, b = _affine(weight, bias, c)
    act = _activation(activation)
    with Session() as s:
        tx, tg, tb = s.up(xs), s.up(g), s.up(b)
        ty, tsave = s.out(xs.shape), s.out((2 * n * max(int(num_groups), 1),))
        s.call("vx_group_norm_forward", tx, int(num_groups), tg, tb, float(eps), act, float(negative_slope), ty, tsave)
        tdx = s.out(xs.shape)
        tdg, tdb = (s.out((c,)), s.out((c,))) if g is not None else (None, None)
        s.call("vx_group_norm_backward", tx, int(num_groups), ty, s.up(dy), tg, tsave, act, float(negative_slope),
               tdx, tdg, tdb, 0)
        return s.get(tdx).reshape(np.shape(x)), s.get(tdg), s.get(tdb)


# ------------------------------------------------------------------------------- channel layer norm
def layer_norm_channels(x, weight=None, bias=None, eps=1e-6):
    """LayerNorm over the channel dimension of [N, C, ...] at every voxel (3D UX-Net's
    channels_first LayerNorm): F.layer_norm(x.movedim(1, -1), (C,), weight, bias, eps).movedim(-1, 1)."""
    xs = _as_ncs(x, "layer_norm_channels")
    n, c, sp = xs.shape[:3]
    g, b = _affine(weight, bias, c)
    with Session() as s:
        tx, ty, tsave = s.up(xs), s.out(xs.shape), s.out((2 * n * sp,))
        s.call("vx_layer_norm_channels_forward", tx, s.up(g), s.up(b), float(eps), ty, tsave)
        return s.get(ty).reshape(np.shape(x))


def layer_norm_channels_backward(x, grad_y, weight=None, bias=None, eps=1e-6):
    """Gradients of layer_norm_channels: (dx, dweight, dbias)."""
    xs = _as_ncs(x, "layer_norm_channels_backward")
    n, c, sp = xs.shape[:3]
    dy = f32(grad_y).reshape(xs.shape)
    g, b = _affine(weight, bias, c)
    with Session() as s:
        tx, tg, tb = s.up(xs), s.up(g), s.up(b)
        ty, tsave = s.out(xs.shape), s.out((2 * n * sp,))
        s.call("vx_layer_norm_channels_forward", tx, tg, tb, float(eps), ty, tsave)
        tdx = s.out(xs.shape)
        tdg, tdb = (s.out((c,)), s.out((c,))) if g is not None else (None, None)
        s.call("vx_layer_norm_channels_backward", tx, s.up(dy), tg, tsave, tdx, tdg, tdb, 0)
        return s.get(tdx).reshape(np.shape(x)), s.get(tdg), s.get(tdb)
