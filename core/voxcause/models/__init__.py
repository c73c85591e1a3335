"""Model loading (TorchScript, torch.export, ONNX, MONAI bundles, model cards) and batched scoring."""

from .card import ModelCard, read_card
from .load import load_model
from .loaded import LoadedModel, resolve_device, set_threads
from .normalization import normalize
from .protocol import Model, as_model

__all__ = ["LoadedModel", "Model", "ModelCard", "as_model", "load_model", "normalize", "read_card", "resolve_device", "set_threads"]
