"""voxcl: Python bindings (ctypes) of libvoxcl, 3D segmentation ops on OpenCL devices.

    import numpy as np, voxcl
    voxcl.set_device("cpu")                     # optional: else $VOXCL_DEVICE, else the default
    y = voxcl.conv3d(x, w, b, stride=2, padding=1)
    dx, dw, db = voxcl.conv3d_backward(x, w, dy, b, stride=2, padding=1)

Arrays: numpy, float32 (others are converted), NCDHW, results are new arrays. The functions
mirror torch.nn.functional (names, argument order, defaults); each op has an `<op>_backward`
giving the gradients torch.autograd would for L = sum(grad_y * op(...)). Optimiser steps update
their arrays in place. Errors of the library raise VoxclError (its message and status).

The library is found through $VOXCL_LIBRARY, else <repo>/build/libvoxcl.so beside this
package, else the system loader (see _lib.py).
"""
from ._context import Context, Session, devices, get_context, set_device
from ._lib import VoxclError
from ._lib import has as has_function
from ._lib import path as library_path
from .nifti import load_nifti, save_nifti
from .ops import *  # noqa: F401,F403
from .ops import __all__ as _ops_all
from .optim import adam_step, sgd_step
from .norm import *  # noqa: F401,F403  (batch_norm, group_norm, layer_norm_channels and backwards)
from .more import *  # noqa: F401,F403  (prelu, gelu, pooling, interpolate, pad, losses, ...)
from .predict import Predictor, predict

__version__ = "0.1.0"

__all__ = ["VoxclError", "Context", "Session", "devices", "get_context", "set_device", "has_function",
           "library_path", "load_nifti", "save_nifti", "adam_step", "sgd_step", "Predictor", "predict"] + list(_ops_all)
