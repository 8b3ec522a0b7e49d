"""NIfTI files through the library's vx_volume_* API (no nibabel needed).

Arrays are channels-first [C, Z, Y, X] (x fastest in memory, as NIfTI stores voxels): index
[c, k, j, i] is voxel (i, j, k) of channel c. nibabel's get_fdata() is [X, Y, Z(, C)]: the
same data transposed.
"""
import ctypes
import os

import numpy as np

from . import _lib
from ._context import _ERRLEN, _check_buf, _errbuf
from ._lib import VoxclError, fn

__all__ = ["load_nifti", "save_nifti"]

_DATATYPES = {2: "uint8", 4: "int16", 8: "int32", 16: "float32", 64: "float64", 256: "int8", 512: "uint16",
              768: "uint32", 1024: "int64", 1280: "uint64"}


class _Volume:
    def __init__(self, handle):
        self.h = handle

    @classmethod
    def read(cls, path):
        h = ctypes.c_void_p()
        buf = _errbuf()
        _check_buf(fn.vx_volume_read(os.fsencode(path), ctypes.byref(h), buf, _ERRLEN), buf)
        return cls(h)

    @classmethod
    def create(cls, dims, channels, spacing):
        h = ctypes.c_void_p()
        sp = None if spacing is None else (ctypes.c_float * 3)(*[float(s) for s in spacing])
        st = fn.vx_volume_create(int(dims[0]), int(dims[1]), int(dims[2]), int(channels), sp, ctypes.byref(h))
        if st != _lib.VX_OK:
            raise VoxclError(st, f"vx_volume_create({dims[0]}, {dims[1]}, {dims[2]}, {channels}) failed")
        return cls(h)

    def dims(self):
        d = (ctypes.c_int * 4)()
        fn.vx_volume_dims(self.h, d)
        return tuple(d)  # x, y, z, channels

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        fn.vx_volume_destroy(self.h)


def load_nifti(path):
    """Reads a .nii / .nii.gz / .hdr+.img file (NIfTI-1 or -2, any stored datatype, scl
    slope/intercept applied). Returns (data, affine, header):
      data   float32 [C, Z, Y, X] (C = 1 for a 3-D file; dims 4..7 all become channels)
      affine float64 4x4 voxel-to-world matrix (sform when set, else qform)
      header dict: shape (X, Y, Z), channels, spacing (x, y, z) mm, datatype (NIfTI code),
             datatype_name ('uint8', 'float32', ...)
    Raises VoxclError (VX_ERR_IO, VX_ERR_FORMAT, ...) with the library's message."""
    with _Volume.read(path) as v:
        nx, ny, nz, nc = v.dims()
        ptr = fn.vx_volume_data(v.h)
        data = np.ctypeslib.as_array(ptr, shape=(nc * nz * ny * nx,)).reshape(nc, nz, ny, nx).copy()
        m = (ctypes.c_double * 16)()
        fn.vx_volume_affine(v.h, m)
        sp = (ctypes.c_float * 3)()
        fn.vx_volume_spacing(v.h, sp)
        dt = int(fn.vx_volume_datatype(v.h))
    header = {"shape": (nx, ny, nz), "channels": nc, "spacing": tuple(float(s) for s in sp), "datatype": dt,
              "datatype_name": _DATATYPES.get(dt, str(dt))}
    return data, np.array(list(m), dtype=np.float64).reshape(4, 4), header


def save_nifti(path, array, like=None, labels=False, spacing=None):
    """Writes array ([Z, Y, X] or [C, Z, Y, X]) to path (.nii.gz compressed, .nii plain),
    through a temporary file and a rename.
      like     None: a new header with the 'spacing' (x, y, z mm; None: 1 mm) scaling as both
               qform and sform; or the path of a NIfTI file whose header and transforms are
               copied (its x, y, z dims must equal the array's).
      labels   True: one channel stored as the smallest unsigned integer type holding the
               rounded values (NIFTI_INTENT_LABEL); values must be finite and 0..2^32-1.
               False: float32 (C > 1 gives a 4-D file).
    Raises VoxclError with the library's message, ValueError for a bad array shape."""
    a = np.ascontiguousarray(array, dtype=np.float32)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise ValueError(f"save_nifti: array must be [Z, Y, X] or [C, Z, Y, X], got shape {np.shape(array)}")
    nc, nz, ny, nx = a.shape
    if labels and nc != 1:
        raise ValueError(f"save_nifti: labels=True takes one channel, got {nc}")
    if like is not None and spacing is not None:
        raise ValueError("save_nifti: give either like or spacing (like's spacing is used)")
    tmpl = _Volume.read(like) if like is not None else _Volume.create((nx, ny, nz), 1, spacing)
    with tmpl:
        d = tmpl.dims()
        if d[:3] != (nx, ny, nz):
            raise ValueError(f"save_nifti: array has x, y, z = {(nx, ny, nz)} voxels, {like} has {d[:3]}")
        buf = _errbuf()
        data = a.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        if labels:
            st = fn.vx_volume_write_like(os.fsencode(path), tmpl.h, data, 1, buf, _ERRLEN)
        else:
            st = fn.vx_volume_write_float(os.fsencode(path), tmpl.h, data, nc, buf, _ERRLEN)
        _check_buf(st, buf)
