"""Optimizers: gradient *ascent* on the log-likelihood, ``theta += step(grad)``, with optional
L2 (``weight_decay``) and L1 penalties, and learning-rate schedules."""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from .._checks import nonnegative_float, positive_float

__all__ = ["SGD", "Adam", "exponential_decay"]


def exponential_decay(lr: float, rate: float) -> Callable[[int], float]:
    """Learning-rate schedule ``lr * rate ** epoch`` (epochs count from 0)."""
    return lambda epoch: lr * rate ** epoch


class _Optimizer:
    """Gradient *ascent* on the log-likelihood with optional L2/L1 penalties.

    ``lr`` is a float or a schedule ``epoch -> float``.
    """

    #: Attributes a checkpoint records and a resumed run must match.
    hyperparameters: tuple[str, ...] = ("lr", "weight_decay", "l1")

    def __init__(self, lr, weight_decay: float, l1: float):
        if not callable(lr):
            lr = positive_float(lr, "lr")
        self.lr = lr
        self.weight_decay = nonnegative_float(weight_decay, "weight_decay")
        self.l1 = nonnegative_float(l1, "l1")
        self.slots: dict[str, dict[str, np.ndarray]] = {}

    def rate(self, epoch: int) -> float:
        return self.lr(epoch) if callable(self.lr) else self.lr

    def penalised(self, theta, grad):
        """``grad - weight_decay * theta - l1 * sign(theta)``."""
        return grad - self.weight_decay * theta - self.l1 * np.sign(theta)

    def updates(self, params: Mapping, grads: Mapping, epoch: int) -> dict:
        """The step for every parameter (not yet applied)."""
        raise NotImplementedError

    def get_state(self) -> dict:
        return {f"{slot}/{name}": arr for name, slots in self.slots.items()
                for slot, arr in slots.items()}

    def set_state(self, state: Mapping) -> None:
        for key, arr in state.items():
            slot, name = key.split("/", 1)
            self.slots.setdefault(name, {})[slot] = np.array(arr)


class SGD(_Optimizer):
    """Stochastic gradient ascent with momentum: ``v = momentum v + lr g; theta += v``,
    with ``g`` the gradient minus ``weight_decay * theta + l1 * sign(theta)``."""

    hyperparameters = ("lr", "momentum", "weight_decay", "l1")

    def __init__(self, lr=0.05, momentum: float = 0.0, weight_decay: float = 0.0,
                 l1: float = 0.0):
        super().__init__(lr, weight_decay, l1)
        self.momentum = nonnegative_float(momentum, "momentum")
        if self.momentum >= 1:
            raise ValueError(f"momentum must be < 1, got {momentum}")

    def updates(self, params, grads, epoch):
        lr = self.rate(epoch)
        out = {}
        for name, theta in params.items():
            slot = self.slots.setdefault(name, {})
            step = lr * self.penalised(theta, grads[name])
            if self.momentum:
                step = slot["velocity"] = self.momentum * slot.get("velocity", 0.0) + step
            out[name] = step
        return out


class Adam(_Optimizer):
    """Adam (Kingma & Ba) for ascent: ``m, v`` moving moments of ``g``;
    ``theta += lr * m_hat / (sqrt(v_hat) + eps)``."""

    hyperparameters = ("lr", "beta1", "beta2", "eps", "weight_decay", "l1")

    def __init__(self, lr=1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.0, l1: float = 0.0):
        super().__init__(lr, weight_decay, l1)
        for name, value in (("beta1", beta1), ("beta2", beta2)):
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        self.beta1, self.beta2, self.eps = beta1, beta2, positive_float(eps, "eps")

    def updates(self, params, grads, epoch):
        lr = self.rate(epoch)
        out = {}
        for name, theta in params.items():
            slot = self.slots.setdefault(name, {})
            g = self.penalised(theta, grads[name])
            t = slot["t"] = slot.get("t", np.zeros(())) + 1
            m = slot["m"] = self.beta1 * slot.get("m", 0.0) + (1 - self.beta1) * g
            v = slot["v"] = self.beta2 * slot.get("v", 0.0) + (1 - self.beta2) * g * g
            m_hat = m / (1 - self.beta1 ** t)
            v_hat = v / (1 - self.beta2 ** t)
            out[name] = lr * m_hat / (np.sqrt(v_hat) + self.eps)
        return out
