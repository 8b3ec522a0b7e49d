"""Optimiser steps on numpy arrays, updated IN PLACE.

param and the state arrays (exp_avg, exp_avg_sq, momentum_buffer) must be writable,
C-contiguous float32 numpy arrays of equal size (any shape): they are uploaded, stepped on the
device and written back into the same memory. grad may be anything array-like. Each function
returns param. The state arrays start as zeros (np.zeros_like(param)), as in PyTorch.
"""
import numpy as np

from ._context import InOut, f32, run

__all__ = ["adam_step", "sgd_step"]


def adam_step(param, grad, exp_avg, exp_avg_sq, step, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
              decoupled=False):
    """One step of torch.optim.Adam (decoupled=False: weight_decay is added to the gradient) or
    torch.optim.AdamW (decoupled=True: param *= 1 - lr * weight_decay first), without amsgrad.
    step counts from 1 (the bias corrections use it):
        g = grad (+ weight_decay * param);  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
        param -= lr * (m / (1 - b1^step)) / (sqrt(v / (1 - b2^step)) + eps)
    Updates param, exp_avg (m) and exp_avg_sq (v) in place."""
    g = f32(grad)
    if g.size != param.size:
        raise ValueError(f"adam_step: grad has {g.size} elements, param has {np.size(param)}")
    run("vx_adam_step", InOut(_flat(param), "param"), g.reshape(1, 1, 1, 1, -1), InOut(_flat(exp_avg), "exp_avg"),
        InOut(_flat(exp_avg_sq), "exp_avg_sq"), int(step), float(lr), float(betas[0]), float(betas[1]), float(eps),
        float(weight_decay), int(bool(decoupled)))
    return param


def sgd_step(param, grad, momentum_buffer=None, lr=1e-2, momentum=0.0, nesterov=False, weight_decay=0.0):
    """One step of torch.optim.SGD (dampening 0):
        g = grad + weight_decay * param;  buf = momentum * buf + g
        param -= lr * (g + momentum * buf if nesterov else buf)
    Updates param and momentum_buffer in place. momentum_buffer None: a zero buffer used once
    and dropped (right for momentum = 0, or for a first step whose buffer you do not keep)."""
    g = f32(grad)
    if g.size != param.size:
        raise ValueError(f"sgd_step: grad has {g.size} elements, param has {np.size(param)}")
    buf = np.zeros(param.size, np.float32) if momentum_buffer is None else momentum_buffer
    run("vx_sgd_step", InOut(_flat(param), "param"), g.reshape(1, 1, 1, 1, -1), InOut(_flat(buf), "momentum_buffer"),
        float(lr), float(momentum), int(bool(nesterov)), float(weight_decay))
    return param


def _flat(a):
    """A 5-D view of 'a' sharing its memory (InOut then checks dtype and layout)."""
    if isinstance(a, np.ndarray) and a.flags.c_contiguous:
        return a.reshape(1, 1, 1, 1, -1)
    return a  # InOut refuses it with a message
