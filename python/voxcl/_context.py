"""Devices, contexts, and the generic call machinery every op goes through.

An op is one call of `run(c_function_name, *args)`:
  - a numpy array argument is uploaded into a fresh device tensor (float32, C-contiguous; its
    shape padded with trailing 1s to 5-D), passed as vx_tensor *;
  - Out(shape) allocates a device tensor that is downloaded after the call;
  - InOut(array) uploads a float32 C-contiguous array and writes the result back into it;
  - None is a NULL tensor; anything else (ints, floats, ctypes objects, byref(...)) goes to
    ctypes unchanged.
The module's default context comes first; a nonzero status raises VoxclError with
vx_context_last_error's message. Device tensors live only for the call.
"""
import ctypes
import os
import threading

import numpy as np

from . import _lib
from ._lib import VoxclError, fn

_ERRLEN = 4096


def _errbuf():
    return ctypes.create_string_buffer(_ERRLEN)


def _check_buf(status, buf):
    if status != _lib.VX_OK:
        raise VoxclError(status, buf.value.decode(errors="replace"))


def _device_dict(d, default):
    return {
        "index": f"{d.platform}:{d.device}",
        "name": d.name.decode(errors="replace"),
        "vendor": d.vendor.decode(errors="replace"),
        "platform": d.platform_name.decode(errors="replace"),
        "driver_version": d.driver_version.decode(errors="replace"),
        "opencl_version": d.opencl_version.decode(errors="replace"),
        "type": "gpu" if d.is_gpu else "cpu" if d.is_cpu else "other",
        "compute_units": int(d.compute_units),
        "global_mem_bytes": int(d.global_mem_bytes),
        "local_mem_bytes": int(d.local_mem_bytes),
        "max_alloc_bytes": int(d.max_alloc_bytes),
        "fp16": bool(d.fp16),
        "fp64": bool(d.fp64),
        "default": bool(default),
    }


def devices():
    """Every OpenCL device of every platform, as `voxcl devices --json` lists them: dicts with
    index ("P:D"), name, vendor, platform, driver_version, opencl_version, type ("gpu", "cpu",
    "other"), compute_units, global_mem_bytes, local_mem_bytes, max_alloc_bytes, fp16, fp64 and
    default (True for the device chosen when none is requested)."""
    arr = ctypes.POINTER(_lib.DeviceInfo)()
    n = ctypes.c_int(0)
    buf = _errbuf()
    _check_buf(fn.vx_devices_list(ctypes.byref(arr), ctypes.byref(n), buf, _ERRLEN), buf)
    try:
        default = ctypes.c_int(-1)
        if n.value:
            fn.vx_device_resolve(arr, n.value, None, ctypes.byref(default), None, 0)
        return [_device_dict(arr[i], i == default.value) for i in range(n.value)]
    finally:
        fn.vx_free(arr)


class Context:
    """An owned vx_context. device: as for `voxcl --device` ("P:D", "gpu", "cpu", "any", or part
    of a name; None: $VOXCL_DEVICE, else the first GPU, else the first CPU). cache_dir: the
    on-disk program cache (None: the library's default, "off" disables). workspace_bytes: 0 for
    the library's default."""

    def __init__(self, device=None, cache_dir=None, workspace_bytes=0, verbose=False):
        self.handle = None
        self.lock = threading.RLock()  # one call at a time on a context
        # The ctypes strings must outlive the create call only; keep them anyway.
        self._device_b = device.encode() if isinstance(device, str) else device
        self._cache_b = os.fsencode(cache_dir) if cache_dir is not None else None
        opts = _lib.ContextOptions(self._device_b, self._cache_b, int(workspace_bytes), int(bool(verbose)))
        h = ctypes.c_void_p()
        buf = _errbuf()
        _check_buf(fn.vx_context_create(ctypes.byref(opts), ctypes.byref(h), buf, _ERRLEN), buf)
        self.handle = h

    @property
    def device(self):
        """The context's device as a dict (see devices(); 'default' is not filled in)."""
        return _device_dict(fn.vx_context_device(self.handle).contents, False)

    def last_error(self):
        s = fn.vx_context_last_error(self.handle)
        return s.decode(errors="replace") if s else ""

    def check(self, status):
        if status != _lib.VX_OK:
            raise VoxclError(status, self.last_error())

    def finish(self):
        self.check(fn.vx_context_finish(self.handle))

    def close(self):
        if self.handle:
            fn.vx_context_destroy(self.handle)
            self.handle = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


_default = None
_default_lock = threading.Lock()


def get_context():
    """The module's default Context, created on first use on the device of set_device(), else
    $VOXCL_DEVICE, else the library's default (first GPU, else first CPU)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Context()
        return _default


def set_device(request=None, **options):
    """Replaces the default context by one on 'request' ("0:0", "cpu", "gpu", "any", part of a
    device name; None: $VOXCL_DEVICE or the default). Created now, so a bad request raises
    VoxclError(VX_ERR_NO_DEVICE) listing the devices. options: cache_dir, workspace_bytes,
    verbose as for Context. Returns the new context."""
    global _default
    ctx = Context(request, **options)
    with _default_lock:
        old, _default = _default, ctx
    if old is not None:
        with old.lock:  # not while a call of another thread still runs on it
            old.close()
    return ctx


# ------------------------------------------------------------------------------- call machinery
def f32(a):
    """a as a float32 C-contiguous numpy array (copied only where needed)."""
    if a is None:
        return None
    return np.ascontiguousarray(a, dtype=np.float32)


def shape5(shape):
    """NCDHW shape of an array of up to 5 dims: trailing dims of 1 appended."""
    shape = tuple(int(s) for s in shape)
    if len(shape) > 5:
        raise ValueError(f"voxcl tensors have at most 5 dimensions, got shape {shape}")
    return shape + (1,) * (5 - len(shape))


class Out:
    """An output tensor of 'shape' (the numpy result gets exactly this shape)."""

    def __init__(self, shape):
        self.shape = tuple(int(s) for s in shape)


class InOut:
    """A float32 C-contiguous writable array updated in place by the call."""

    def __init__(self, array, name="array"):
        if not (isinstance(array, np.ndarray) and array.dtype == np.float32 and array.flags.c_contiguous
                and array.flags.writeable):
            raise TypeError(f"{name} is updated in place: it must be a writable, C-contiguous float32 numpy array")
        self.array = array


class Session:
    """Several C calls on one context sharing device tensors, all destroyed at the end (also on
    errors):

        with Session() as s:
            tx, ty = s.up(x), s.out(shape)
            s.call("vx_softmax_forward", tx, ty)
            return s.get(ty)
    """

    def __init__(self, ctx=None):
        self.ctx = ctx or get_context()
        self.tensors = []
        self.shapes = {}

    def __enter__(self):
        self.ctx.lock.acquire()
        return self

    def __exit__(self, *exc):
        try:
            for h in reversed(self.tensors):
                fn.vx_tensor_destroy(h)
            self.tensors = []
        finally:
            self.ctx.lock.release()

    def out(self, shape):
        """A new (uninitialised) device tensor; get() returns it with exactly this shape."""
        shape = tuple(int(s) for s in shape)
        dims = (ctypes.c_int * 5)(*shape5(shape))
        h = ctypes.c_void_p()
        self.ctx.check(fn.vx_tensor_create(self.ctx.handle, dims, ctypes.byref(h)))
        self.tensors.append(h)
        self.shapes[h.value] = shape
        return h

    def up(self, array):
        """A device copy of array (None stays None: a NULL tensor)."""
        if array is None:
            return None
        array = f32(array)
        h = self.out(array.shape)
        self.ctx.check(fn.vx_tensor_upload(h, array.ctypes.data_as(ctypes.POINTER(ctypes.c_float))))
        return h

    def get(self, h, into=None):
        """The content of device tensor h as a new array (or written into 'into')."""
        if h is None:
            return None
        out = np.empty(self.shapes[h.value], dtype=np.float32) if into is None else into
        self.ctx.check(fn.vx_tensor_download(h, out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))))
        return out

    def call(self, name, *args):
        """C function 'name'(context, *args); a nonzero status raises VoxclError."""
        self.ctx.check(getattr(fn, name)(self.ctx.handle, *args))


def run(name, *args, ctx=None):
    """One C call 'name'(context, *args) with numpy arrays, Out and InOut translated as the
    module docstring says. Returns the Out/InOut arrays: None, one array, or a tuple in
    argument order."""
    with Session(ctx) as s:
        cargs, outs = [], []
        for a in args:
            if isinstance(a, np.ndarray):
                cargs.append(s.up(a))
            elif isinstance(a, Out):
                h = s.out(a.shape)
                outs.append((h, None))
                cargs.append(h)
            elif isinstance(a, InOut):
                h = s.up(a.array)
                outs.append((h, a.array))
                cargs.append(h)
            else:
                cargs.append(a)
        s.call(name, *cargs)
        results = tuple(s.get(h, into) for h, into in outs)
    if not results:
        return None
    return results[0] if len(results) == 1 else results
