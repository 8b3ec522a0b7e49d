"""Loading libvoxcl.so and declaring its C functions for ctypes.

Where the library comes from, first match wins:
  1. $VOXCL_LIBRARY (a path to the shared library; an error if it cannot be loaded);
  2. the build tree beside the package: <repo>/build/libvoxcl.so (this file is
     <repo>/python/voxcl/_lib.py);
  3. the system loader: libvoxcl.so.0, libvoxcl.so, ctypes.util.find_library("voxcl").

Every C function used by the package is declared in SIGNATURES below: one line per function,
(name, result type, argument types). A symbol missing from the loaded library (an older
build) is not an error at import: calling it raises VoxclError(VX_ERR_UNSUPPORTED).
"""
import ctypes
import ctypes.util
import os
from ctypes import POINTER, Structure, c_char, c_char_p, c_double, c_float, c_int, c_size_t, c_uint, c_uint64, c_void_p

# ------------------------------------------------------------------------------- status codes
# Mirrors enum vx_status in include/voxcl.h.
STATUS_NAMES = (
    "VX_OK",
    "VX_ERR_INVALID_ARGUMENT",
    "VX_ERR_SHAPE",
    "VX_ERR_NO_DEVICE",
    "VX_ERR_OPENCL",
    "VX_ERR_BUILD",
    "VX_ERR_OUT_OF_MEMORY",
    "VX_ERR_IO",
    "VX_ERR_FORMAT",
    "VX_ERR_GEMM",
    "VX_ERR_NOT_FINITE",
    "VX_ERR_UNSUPPORTED",
)
VX_OK = 0
VX_ERR_INVALID_ARGUMENT = 1
VX_ERR_UNSUPPORTED = 11

# enum vx_activation
VX_ACT_NONE, VX_ACT_RELU, VX_ACT_LEAKY_RELU = 0, 1, 2


class VoxclError(RuntimeError):
    """A call into libvoxcl failed. .status is the vx_status code (int), .status_name its
    enum name, str(e) the library's message (vx_context_last_error or the call's errbuf)."""

    def __init__(self, status, message):
        self.status = int(status)
        self.status_name = STATUS_NAMES[self.status] if 0 <= self.status < len(STATUS_NAMES) else str(status)
        self.message = message
        super().__init__(f"{message} [{self.status_name}]" if message else self.status_name)


# ------------------------------------------------------------------------------- structs
class DeviceInfo(Structure):
    _fields_ = [
        ("platform", c_int), ("device", c_int),
        ("name", c_char * 256), ("vendor", c_char * 256), ("platform_name", c_char * 256),
        ("driver_version", c_char * 128), ("opencl_version", c_char * 128),
        ("is_gpu", c_int), ("is_cpu", c_int),
        ("compute_units", c_uint),
        ("global_mem_bytes", c_uint64), ("local_mem_bytes", c_uint64), ("max_alloc_bytes", c_uint64),
        ("fp16", c_int), ("fp64", c_int),
    ]


class ContextOptions(Structure):
    _fields_ = [("device", c_char_p), ("cache_dir", c_char_p), ("workspace_bytes", c_size_t), ("verbose", c_int)]


class ConvParams(Structure):
    _fields_ = [("stride", c_int * 3), ("padding", c_int * 3), ("dilation", c_int * 3),
                ("output_padding", c_int * 3), ("groups", c_int)]


class LossParams(Structure):
    _fields_ = [("ce_weight", c_float), ("dice_weight", c_float), ("dice_include_background", c_int),
                ("dice_smooth", c_float)]


# ------------------------------------------------------------------------------- signatures
# Short names for the argument types below. Handles are opaque pointers.
ST = c_int            # vx_status
CTX = c_void_p        # vx_context *
T = c_void_p          # vx_tensor * (NULL: None)
VOL = c_void_p        # vx_volume *
I, F, SZ, STR = c_int, c_float, c_size_t, c_char_p
BUF = ctypes.c_char_p  # char *errbuf (a ctypes.create_string_buffer)
IARR = POINTER(c_int)
FARR = POINTER(c_float)

SIGNATURES = [
    # runtime
    ("vx_status_string", c_char_p, [ST]),
    ("vx_devices_list", ST, [POINTER(POINTER(DeviceInfo)), POINTER(c_int), BUF, SZ]),
    ("vx_device_resolve", ST, [POINTER(DeviceInfo), c_int, STR, POINTER(c_int), BUF, SZ]),
    ("vx_free", None, [c_void_p]),
    ("vx_context_create", ST, [POINTER(ContextOptions), POINTER(c_void_p), BUF, SZ]),
    ("vx_context_destroy", None, [CTX]),
    ("vx_context_last_error", c_char_p, [CTX]),
    ("vx_context_device", POINTER(DeviceInfo), [CTX]),
    ("vx_context_finish", ST, [CTX]),
    # tensors
    ("vx_tensor_create", ST, [CTX, IARR, POINTER(c_void_p)]),
    ("vx_tensor_destroy", None, [T]),
    ("vx_tensor_upload", ST, [T, FARR]),
    ("vx_tensor_download", ST, [T, FARR]),
    ("vx_tensor_fill", ST, [T, F]),
    # convolutions
    ("vx_conv3d_forward", ST, [CTX, T, T, T, POINTER(ConvParams), T]),
    ("vx_conv3d_backward_data", ST, [CTX, T, T, POINTER(ConvParams), T, I]),
    ("vx_conv3d_backward_weights", ST, [CTX, T, T, POINTER(ConvParams), T, T, I]),
    ("vx_conv_transpose3d_forward", ST, [CTX, T, T, T, POINTER(ConvParams), T]),
    ("vx_conv_transpose3d_backward_data", ST, [CTX, T, T, POINTER(ConvParams), T, I]),
    ("vx_conv_transpose3d_backward_weights", ST, [CTX, T, T, POINTER(ConvParams), T, T, I]),
    # normalisation: x, gamma, beta, eps, act, slope, y, save / x, y, dy, gamma, save, act, slope, dx, dg, db, acc
    ("vx_instance_norm_forward", ST, [CTX, T, T, T, F, I, F, T, T]),
    ("vx_instance_norm_backward", ST, [CTX, T, T, T, T, T, I, F, T, T, T, I]),
    # elementwise
    ("vx_activation_forward", ST, [CTX, I, F, T, T]),
    ("vx_activation_backward", ST, [CTX, I, F, T, T, T, I]),
    ("vx_concat_channels", ST, [CTX, T, T, T]),
    ("vx_concat_channels_backward", ST, [CTX, T, T, T, I]),
    ("vx_axpy", ST, [CTX, F, T, T]),
    ("vx_softmax_forward", ST, [CTX, T, T]),
    # loss and optimisers
    ("vx_loss_params_init", None, [POINTER(LossParams)]),
    ("vx_loss_dice_ce", ST, [CTX, T, T, POINTER(LossParams), POINTER(c_float), T]),
    ("vx_adam_step", ST, [CTX, T, T, T, T, I, F, F, F, F, F, I]),
    ("vx_sgd_step", ST, [CTX, T, T, T, F, F, I, F]),
    # NIfTI volumes
    ("vx_volume_read", ST, [STR, POINTER(c_void_p), BUF, SZ]),
    ("vx_volume_create", ST, [I, I, I, I, FARR, POINTER(c_void_p)]),
    ("vx_volume_destroy", None, [VOL]),
    ("vx_volume_dims", None, [VOL, IARR]),
    ("vx_volume_spacing", None, [VOL, FARR]),
    ("vx_volume_data", FARR, [VOL]),
    ("vx_volume_affine", None, [VOL, POINTER(c_double)]),
    ("vx_volume_datatype", I, [VOL]),
    ("vx_volume_write_like", ST, [STR, VOL, FARR, I, BUF, SZ]),
    ("vx_volume_write_float", ST, [STR, VOL, FARR, I, BUF, SZ]),
]


def _candidates():
    env = os.environ.get("VOXCL_LIBRARY")
    if env:
        return [env], True
    here = os.path.dirname(os.path.abspath(__file__))
    build = os.path.normpath(os.path.join(here, "..", "..", "build", "libvoxcl.so"))
    names = [build] if os.path.exists(build) else []
    names += ["libvoxcl.so.0", "libvoxcl.so"]
    found = ctypes.util.find_library("voxcl")
    if found:
        names.append(found)
    return names, False


class _Missing:
    """Stands in for a C function the loaded library does not export."""

    def __init__(self, name):
        self.name = name

    def __call__(self, *args):
        raise VoxclError(VX_ERR_UNSUPPORTED, f"{self.name} is not exported by the loaded libvoxcl ({path})")


def _load():
    names, explicit = _candidates()
    errors = []
    for name in names:
        try:
            return ctypes.CDLL(name), name
        except OSError as e:
            errors.append(f"{name}: {e}")
    hint = "" if explicit else " (set VOXCL_LIBRARY to the path of libvoxcl.so)"
    raise OSError("voxcl: cannot load libvoxcl: " + "; ".join(errors) + hint)


lib, path = _load()


class _Functions:
    """The declared C functions as attributes: fn.vx_conv3d_forward(...)."""


fn = _Functions()


def declare(name, restype, argtypes):
    """Binds one C function (also usable for functions added after import)."""
    f = getattr(lib, name, None)
    if f is None:
        setattr(fn, name, _Missing(name))
        return False
    f.restype = restype
    f.argtypes = argtypes
    setattr(fn, name, f)
    return True


for _sig in SIGNATURES:
    declare(*_sig)


def has(name):
    """True when the loaded library exports the C function 'name'."""
    return not isinstance(getattr(fn, name, None), (_Missing, type(None)))


def status_string(status):
    s = fn.vx_status_string(status) if has("vx_status_string") else None
    return s.decode() if s else STATUS_NAMES[status] if 0 <= status < len(STATUS_NAMES) else str(status)
