"""Inversion: DDIM with noise regularisation (pix2pix-zero, docs/method.md §2) for ε/v models, and
the velocity ODE run upwards for flow-matching models (SD3, FLUX).

- [`DDIMInverter`][zerocon.inversion.DDIMInverter], [`NoiseRegularizer`][zerocon.inversion.NoiseRegularizer], [`to_epsilon`][zerocon.inversion.to_epsilon].
- [`FlowMatchInverter`][zerocon.inversion.FlowMatchInverter] — Euler, or the midpoint rule with the velocity reused (one call per step).
"""

from zerocon.inversion.ddim_inverter import DDIMInverter, InversionCallback, InversionOutput
from zerocon.inversion.flow_inversion import FlowInversionOutput, FlowMatchInverter
from zerocon.inversion.noise_prediction import to_epsilon
from zerocon.inversion.noise_regularizer import NoiseRegularizer

__all__ = [
    "DDIMInverter",
    "FlowInversionOutput",
    "FlowMatchInverter",
    "InversionCallback",
    "InversionOutput",
    "NoiseRegularizer",
    "to_epsilon",
]
