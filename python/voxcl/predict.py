"""Segmentation with a model folder written by `voxcl train` (plan.json + model.safetensors)."""
import ctypes
import os

import numpy as np

from . import _lib
from ._context import _ERRLEN, _check_buf, _errbuf, get_context
from ._lib import VoxclError, fn
from .nifti import _Volume

__all__ = ["Predictor", "predict"]

for _sig in [
    ("vx_predictor_open", _lib.ST, [_lib.CTX, _lib.STR, ctypes.POINTER(ctypes.c_void_p), _lib.BUF, _lib.SZ]),
    ("vx_predictor_destroy", None, [ctypes.c_void_p]),
    ("vx_predictor_classes", _lib.I, [ctypes.c_void_p]),
    ("vx_predictor_channels", _lib.I, [ctypes.c_void_p]),
    ("vx_predictor_segment", _lib.ST, [ctypes.c_void_p, _lib.VOL, _lib.F, _lib.I, _lib.FARR, _lib.FARR, ctypes.c_void_p,
                                       ctypes.c_void_p, _lib.BUF, _lib.SZ]),
]:
    _lib.declare(*_sig)


class Predictor:
    """A trained model on the default (or given) context. segment(image) takes a raw image
    [C, Z, Y, X] (or [Z, Y, X] for one channel), applies the training normalisation, slides
    windows of the training patch (Gaussian weighting, optional mirroring) and returns
    (labels [Z, Y, X] uint8/uint16, probabilities [K, Z, Y, X] float32 or None)."""

    def __init__(self, model_dir, context=None):
        self.ctx = context or get_context()
        self.h = ctypes.c_void_p()
        buf = _errbuf()
        _check_buf(fn.vx_predictor_open(self.ctx.handle, os.fsencode(model_dir), ctypes.byref(self.h), buf, _ERRLEN), buf)
        self.classes = fn.vx_predictor_classes(self.h)
        self.channels = fn.vx_predictor_channels(self.h)

    def segment(self, image, spacing=None, overlap=-1.0, mirror=False, probabilities=False):
        a = np.ascontiguousarray(image, dtype=np.float32)
        if a.ndim == 3:
            a = a[None]
        if a.ndim != 4 or a.shape[0] != self.channels:
            raise ValueError(f"image of shape {image.shape}: expected [{self.channels}, Z, Y, X]")
        c, z, y, x = a.shape
        vol = _Volume.create((x, y, z), c, spacing)
        with vol:
            ctypes.memmove(fn.vx_volume_data(vol.h), a.ctypes.data, a.nbytes)
            labels = np.empty((z, y, x), np.float32)
            probs = np.empty((self.classes, z, y, x), np.float32) if probabilities else None
            buf = _errbuf()
            with self.ctx.lock:
                st = fn.vx_predictor_segment(self.h, vol.h, float(overlap), int(bool(mirror)),
                                             labels.ctypes.data_as(_lib.FARR),
                                             probs.ctypes.data_as(_lib.FARR) if probs is not None else None,
                                             None, None, buf, _ERRLEN)
            _check_buf(st, buf)
        dtype = np.uint8 if self.classes <= 256 else np.uint16
        return labels.astype(dtype), probs

    def close(self):
        if self.h:
            fn.vx_predictor_destroy(self.h)
            self.h = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def predict(model_dir, image, spacing=None, overlap=-1.0, mirror=False, probabilities=False):
    """Segments one image with a model folder: returns (labels, probabilities or None). See Predictor."""
    p = Predictor(model_dir)
    try:
        return p.segment(image, spacing, overlap, mirror, probabilities)
    finally:
        p.close()
