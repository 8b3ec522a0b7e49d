"""Forward and backward ops on numpy arrays, named and shaped like torch.nn.functional.

Arrays are converted to float32 C-contiguous (copied only when they are not already) and
results are new float32 arrays. Layout is NCDHW. Each call uploads its inputs, runs on the
default context's device, downloads its outputs, and frees its device memory.

Every `<op>_backward` takes the forward's inputs and grad_y = dL/dy and returns dL/d(input)
(and the parameter gradients), exactly what torch.autograd computes for
L = sum(grad_y * op(inputs)).

Errors: the library's refusals (bad shapes, arguments, device failures) raise VoxclError with
its message; problems found before calling it (wrong number of dimensions, an impossible
output size, an unsupported option) raise ValueError.

Adding an op that follows the library's conventions takes a few lines: declare its C function
in _lib.SIGNATURES, then e.g.

    def gelu(x):
        x = f32(x)
        return run("vx_gelu_forward", x, Out(x.shape))
"""
import ctypes

import numpy as np

from . import _lib
from ._context import Out, Session, f32, run
from ._lib import VX_ACT_LEAKY_RELU, VX_ACT_NONE, VX_ACT_RELU

__all__ = [
    "conv3d", "conv3d_backward", "conv_transpose3d", "conv_transpose3d_backward",
    "instance_norm", "instance_norm_backward", "relu", "relu_backward", "leaky_relu",
    "leaky_relu_backward", "softmax", "softmax_backward", "cat", "cat_backward",
    "dice_ce_loss", "dice_ce_loss_backward",
]


# ------------------------------------------------------------------------------- helpers
def _triple(v, what):
    if isinstance(v, (int, np.integer)):
        return (int(v),) * 3
    t = tuple(int(i) for i in v)
    if len(t) != 3:
        raise ValueError(f"{what} must be an int or 3 ints, got {v!r}")
    return t


def _batched(x, op, what="x"):
    """x as a 5-D array; a 4-D [C, D, H, W] (unbatched, as torch allows) gains N = 1."""
    x = f32(x)
    if x.ndim == 4:
        return x[None], True
    if x.ndim != 5:
        raise ValueError(f"{op}: {what} must be 5-D [N, C, D, H, W] (or 4-D unbatched), got shape {x.shape}")
    return x, False


def _conv_params(stride, padding, dilation, groups, output_padding=0):
    p = _lib.ConvParams()
    p.stride[:] = _triple(stride, "stride")
    p.padding[:] = _triple(padding, "padding")
    p.dilation[:] = _triple(dilation, "dilation")
    p.output_padding[:] = _triple(output_padding, "output_padding")
    p.groups = int(groups)
    return p


def _conv_out_shape(op, x, w, p, transposed):
    k = w.shape[2:]
    sizes = []
    for a in range(3):
        s, pad, dil, op_ = p.stride[a], p.padding[a], p.dilation[a], p.output_padding[a]
        if transposed:
            n = (x.shape[2 + a] - 1) * s - 2 * pad + dil * (k[a] - 1) + op_ + 1
        else:
            n = (x.shape[2 + a] + 2 * pad - dil * (k[a] - 1) - 1) // s + 1 if s > 0 else 0
        if n <= 0:
            raise ValueError(f"{op}: output size along axis {2 + a} would be {n} (input {x.shape[2 + a]}, "
                             f"kernel {k[a]}, stride {s}, padding {pad}, dilation {dil})")
        sizes.append(n)
    out_c = w.shape[1] * p.groups if transposed else w.shape[0]
    return (x.shape[0], out_c) + tuple(sizes)


def _weights(w, op):
    w = f32(w)
    if w.ndim != 5:
        raise ValueError(f"{op}: weight must be 5-D, got shape {w.shape}")
    return w


def _unbatch(a, squeeze):
    return a[0] if squeeze else a


# ------------------------------------------------------------------------------- convolutions
def conv3d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv3d. x: [N, C, D, H, W]; w: [O, C/groups, kD, kH, kW]; b: [O] or
    None. stride, padding, dilation: int or 3 ints (no 'same'/'valid' strings)."""
    x, sq = _batched(x, "conv3d")
    w = _weights(w, "conv3d")
    p = _conv_params(stride, padding, dilation, groups)
    y = run("vx_conv3d_forward", x, w, f32(b), ctypes.byref(p), Out(_conv_out_shape("conv3d", x, w, p, False)))
    return _unbatch(y, sq)


def conv3d_backward(x, w, grad_y, b=None, stride=1, padding=0, dilation=1, groups=1):
    """Gradients of conv3d: (dx, dw, db); db is None when b is None (b's values are not used)."""
    x, sq = _batched(x, "conv3d_backward")
    w = _weights(w, "conv3d_backward")
    p = _conv_params(stride, padding, dilation, groups)
    dy = f32(grad_y)
    if sq:
        dy = dy[None]
    with Session() as s:
        tx, tw, tdy = s.up(x), s.up(w), s.up(dy)
        tdx, tdw = s.out(x.shape), s.out(w.shape)
        tdb = s.out((w.shape[0],)) if b is not None else None
        s.call("vx_conv3d_backward_data", tdy, tw, ctypes.byref(p), tdx, 0)
        s.call("vx_conv3d_backward_weights", tx, tdy, ctypes.byref(p), tdw, tdb, 0)
        return _unbatch(s.get(tdx), sq), s.get(tdw), s.get(tdb)


def conv_transpose3d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """torch.nn.functional.conv_transpose3d (same argument order). x: [N, C, D, H, W];
    w: [C, O/groups, kD, kH, kW]; b: [O] or None."""
    x, sq = _batched(x, "conv_transpose3d")
    w = _weights(w, "conv_transpose3d")
    p = _conv_params(stride, padding, dilation, groups, output_padding)
    shape = _conv_out_shape("conv_transpose3d", x, w, p, True)
    y = run("vx_conv_transpose3d_forward", x, w, f32(b), ctypes.byref(p), Out(shape))
    return _unbatch(y, sq)


def conv_transpose3d_backward(x, w, grad_y, b=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """Gradients of conv_transpose3d: (dx, dw, db); db is None when b is None."""
    x, sq = _batched(x, "conv_transpose3d_backward")
    w = _weights(w, "conv_transpose3d_backward")
    p = _conv_params(stride, padding, dilation, groups, output_padding)
    dy = f32(grad_y)
    if sq:
        dy = dy[None]
    with Session() as s:
        tx, tw, tdy = s.up(x), s.up(w), s.up(dy)
        tdx, tdw = s.out(x.shape), s.out(w.shape)
        tdb = s.out((w.shape[1] * p.groups,)) if b is not None else None
        s.call("vx_conv_transpose3d_backward_data", tdy, tw, ctypes.byref(p), tdx, 0)
        s.call("vx_conv_transpose3d_backward_weights", tx, tdy, ctypes.byref(p), tdw, tdb, 0)
        return _unbatch(s.get(tdx), sq), s.get(tdw), s.get(tdb)


# ------------------------------------------------------------------------------- normalisation
_ACTIVATIONS = {None: VX_ACT_NONE, "none": VX_ACT_NONE, "relu": VX_ACT_RELU, "leaky_relu": VX_ACT_LEAKY_RELU}


def _activation(name):
    if name not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of None, 'relu', 'leaky_relu', got {name!r}")
    return _ACTIVATIONS[name]


def _as_ncs(x, op):
    """[N, C, *spatial] -> [N, C, S, 1, 1] (the ops work per (n, c) over all spatial voxels)."""
    x = f32(x)
    if x.ndim < 2:
        raise ValueError(f"{op}: x must have at least 2 dimensions [N, C, ...], got shape {x.shape}")
    n, c = x.shape[:2]
    return x.reshape(n, c, -1, 1, 1)


def _affine(weight, bias, c):
    if weight is None and bias is None:
        return None, None
    weight = np.ones(c, np.float32) if weight is None else f32(weight).reshape(-1)
    bias = np.zeros(c, np.float32) if bias is None else f32(bias).reshape(-1)
    return weight, bias


def instance_norm(x, weight=None, bias=None, eps=1e-5, activation=None, negative_slope=0.01):
    """torch.nn.functional.instance_norm with input statistics (no running stats):
    y = (x - mean) / sqrt(var + eps) * weight[c] + bias[c] per (n, c) over the spatial voxels
    (biased variance). weight/bias: [C] or None (a missing one of the two is 1 / 0).
    activation: None, 'relu' or 'leaky_relu' (negative_slope), fused after the affine step.
    x: [N, C, ...] any number of spatial dims."""
    xs = _as_ncs(x, "instance_norm")
    n, c = xs.shape[:2]
    g, b = _affine(weight, bias, c)
    with Session() as s:
        tx, ty, tsave = s.up(xs), s.out(xs.shape), s.out((n * c * 2,))
        s.call("vx_instance_norm_forward", tx, s.up(g), s.up(b), float(eps), _activation(activation),
               float(negative_slope), ty, tsave)
        return s.get(ty).reshape(np.shape(x))


def instance_norm_backward(x, grad_y, weight=None, bias=None, eps=1e-5, activation=None, negative_slope=0.01):
    """Gradients of instance_norm: (dx, dweight, dbias); the last two are None when weight and
    bias are both None. The forward is recomputed on the device (the C backward needs its output
    and statistics)."""
    xs = _as_ncs(x, "instance_norm_backward")
    n, c = xs.shape[:2]
    dy = f32(grad_y).reshape(xs.shape)
    g, b = _affine(weight, bias, c)
    act = _activation(activation)
    with Session() as s:
        tx, tg, tb = s.up(xs), s.up(g), s.up(b)
        ty, tsave = s.out(xs.shape), s.out((n * c * 2,))
        s.call("vx_instance_norm_forward", tx, tg, tb, float(eps), act, float(negative_slope), ty, tsave)
        tdx = s.out(xs.shape)
        tdg, tdb = (s.out((c,)), s.out((c,))) if g is not None else (None, None)
        s.call("vx_instance_norm_backward", tx, ty, s.up(dy), tg, tsave, act, float(negative_slope), tdx, tdg,
               tdb, 0)
        return s.get(tdx).reshape(np.shape(x)), s.get(tdg), s.get(tdb)


# ------------------------------------------------------------------------------- activations
def _flat(x):
    x = f32(x)
    return x.reshape(1, 1, 1, 1, -1), x.shape


def _act_forward(act, slope, x):
    xf, shape = _flat(x)
    return run("vx_activation_forward", act, float(slope), xf, Out(xf.shape)).reshape(shape)


def _act_backward(act, slope, x, grad_y):
    # The C backward masks with "value > 0" of the tensor it is given. Handing it the forward's
    # input x instead of its output y gives torch's mask (x > 0) for any slope, negative too.
    xf, shape = _flat(x)
    dy = f32(grad_y).reshape(xf.shape)
    return run("vx_activation_backward", act, float(slope), xf, dy, Out(xf.shape), 0).reshape(shape)


def relu(x):
    """torch.nn.functional.relu; any shape."""
    return _act_forward(VX_ACT_RELU, 0.0, x)


def relu_backward(x, grad_y):
    """dL/dx of relu: grad_y where x > 0, else 0."""
    return _act_backward(VX_ACT_RELU, 0.0, x, grad_y)


def leaky_relu(x, negative_slope=0.01):
    """torch.nn.functional.leaky_relu; any shape."""
    return _act_forward(VX_ACT_LEAKY_RELU, negative_slope, x)


def leaky_relu_backward(x, grad_y, negative_slope=0.01):
    """dL/dx of leaky_relu: grad_y where x > 0, else negative_slope * grad_y."""
    return _act_backward(VX_ACT_LEAKY_RELU, negative_slope, x, grad_y)


# ------------------------------------------------------------------------------- softmax
def _check_dim1(dim, ndim, op):
    if dim not in (1, 1 - ndim):
        raise ValueError(f"{op}: only dim=1 (channels) is supported, got dim={dim}")


def softmax(x, dim=1):
    """torch.nn.functional.softmax over channels (dim=1 only). x: [N, C, ...]."""
    xs = _as_ncs(x, "softmax")
    _check_dim1(dim, np.ndim(x), "softmax")
    return run("vx_softmax_forward", xs, Out(xs.shape)).reshape(np.shape(x))


def softmax_backward(x, grad_y, dim=1):
    """dL/dx of softmax: y * (grad_y - sum_c(grad_y * y)). The library has no softmax backward
    yet: y comes from the device, the rest is computed here with numpy (float32)."""
    y = softmax(x, dim)
    g = f32(grad_y).reshape(y.shape)
    return (y * (g - np.sum(g * y, axis=1, keepdims=True))).astype(np.float32)


# ------------------------------------------------------------------------------- concat
def cat(tensors, dim=1):
    """torch.cat along channels (dim=1 only). Every array [N, Ci, ...] with the same N and
    spatial shape."""
    tensors = list(tensors)
    xs = [_as_ncs(t, "cat") for t in tensors]
    if not xs:
        raise ValueError("cat: expected a non-empty list of arrays")
    shapes = [np.shape(t) for t in tensors]
    _check_dim1(dim, len(shapes[0]), "cat")
    for sh in shapes[1:]:
        if len(sh) != len(shapes[0]) or sh[0] != shapes[0][0] or sh[2:] != shapes[0][2:]:
            raise ValueError(f"cat: shapes {shapes[0]} and {sh} differ outside dim 1")
    out_shape = (shapes[0][0], sum(sh[1] for sh in shapes)) + tuple(shapes[0][2:])
    if len(xs) == 1:
        return xs[0].reshape(out_shape).copy()
    n, s5 = xs[0].shape[0], xs[0].shape[2]
    with Session() as s:
        acc, c = s.up(xs[0]), xs[0].shape[1]
        for x in xs[1:]:
            c += x.shape[1]
            y = s.out((n, c, s5, 1, 1))
            s.call("vx_concat_channels", acc, s.up(x), y)
            acc = y
        return s.get(acc).reshape(out_shape)


def cat_backward(grad_y, sizes, dim=1):
    """The gradients of cat's inputs from grad_y: a list of arrays, one per input. sizes: the
    inputs' channel counts (ints), or the inputs themselves."""
    sizes = [int(v) if np.ndim(v) == 0 else int(np.shape(v)[1]) for v in sizes]
    gs = _as_ncs(grad_y, "cat_backward")
    _check_dim1(dim, np.ndim(grad_y), "cat_backward")
    full = np.shape(grad_y)
    if sum(sizes) != gs.shape[1]:
        raise ValueError(f"cat_backward: sizes {sizes} do not add up to grad_y's {gs.shape[1]} channels")
    n, s5 = gs.shape[0], gs.shape[2]
    shape_of = lambda c: (full[0], c) + tuple(full[2:])  # noqa: E731
    if len(sizes) == 1:
        return [gs.reshape(full).copy()]
    out = []
    with Session() as s:
        rest, left = s.up(gs), gs.shape[1]
        for k, c in enumerate(sizes[:-1]):
            left -= c
            da = s.out((n, c, s5, 1, 1))
            db = s.out((n, left, s5, 1, 1))
            s.call("vx_concat_channels_backward", rest, da, db, 0)
            out.append(s.get(da).reshape(shape_of(c)))
            rest = db
        out.append(s.get(rest).reshape(shape_of(sizes[-1])))
    return out


# ------------------------------------------------------------------------------- loss
def _loss_args(logits, labels, ce_weight, dice_weight, include_background, smooth):
    x = _as_ncs(logits, "dice_ce_loss")
    lab = f32(labels)
    if lab.ndim == np.ndim(logits) - 1:  # [N, ...] class indices, as torch's cross_entropy takes them
        lab = lab[:, None]
    want = (np.shape(logits)[0], 1) + tuple(np.shape(logits)[2:])
    if lab.shape != want:
        raise ValueError(f"dice_ce_loss: labels have shape {np.shape(labels)}, expected {want} "
                         f"(or without the 1) for logits {np.shape(logits)}")
    lab = lab.reshape(x.shape[0], 1, x.shape[2], 1, 1)
    p = _lib.LossParams(float(ce_weight), float(dice_weight), int(bool(include_background)), float(smooth))
    return x, lab, p


def dice_ce_loss(logits, labels, ce_weight=1.0, dice_weight=1.0, include_background=False, smooth=1e-5):
    """nnU-Net's Dice + cross-entropy loss (vx_loss_dice_ce), a float:

        p = softmax(logits, dim=1);  y = one_hot(labels, K) (channels first)
        CE   = mean over n and voxels of -log p[n, labels[n, v], v]
        Dice = mean over n and classes k (k >= 1 unless include_background) of
               1 - (2 tp + smooth) / (2 tp + fp + fn + smooth),
               tp = sum_v p y, fp = sum_v p (1 - y), fn = sum_v (1 - p) y  (per sample and class)
        loss = ce_weight * CE + dice_weight * Dice

    logits: [N, K, ...] (K >= 2); labels: [N, 1, ...] or [N, ...] holding class indices 0..K-1
    (any numeric dtype). A label outside 0..K-1 or not an integer raises VoxclError."""
    x, lab, p = _loss_args(logits, labels, ce_weight, dice_weight, include_background, smooth)
    loss = ctypes.c_float()
    run("vx_loss_dice_ce", x, lab, ctypes.byref(p), ctypes.byref(loss), None)
    return float(loss.value)


def dice_ce_loss_backward(logits, labels, grad_output=1.0, ce_weight=1.0, dice_weight=1.0, include_background=False,
                          smooth=1e-5):
    """grad_output * d(dice_ce_loss)/d(logits), shaped like logits."""
    x, lab, p = _loss_args(logits, labels, ce_weight, dice_weight, include_background, smooth)
    loss = ctypes.c_float()
    d = run("vx_loss_dice_ce", x, lab, ctypes.byref(p), ctypes.byref(loss), Out(x.shape))
    if grad_output != 1.0:
        d *= np.float32(grad_output)
    return d.reshape(np.shape(logits))
