"""DDIM inversion with noise regularisation (pix2pix-zero, docs/method.md §2)."""

from zerocon.inversion.ddim_inverter import DDIMInverter, InversionCallback, InversionOutput
from zerocon.inversion.noise_prediction import to_epsilon
from zerocon.inversion.noise_regularizer import NoiseRegularizer

__all__ = ["DDIMInverter", "InversionCallback", "InversionOutput", "NoiseRegularizer", "to_epsilon"]
