"""Causal responsibility (ReX / 3D ReX) and the minimal explanations built on it."""

from .responsibility import CausalResponsibility

__all__ = ["CausalResponsibility"]
