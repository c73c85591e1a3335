"""Causal responsibility (ReX / 3D ReX) and the minimal explanations built on it."""

from .explainer import CausalResponsibility

__all__ = ["CausalResponsibility"]
