"""Model loading (TorchScript, torch.export, ONNX, MONAI bundles, model cards) and batched scoring."""

from .card import ModelCard, read_card
from .loaded import LoadedModel, load_model, resolve_device, set_threads
from .normalization import normalize

__all__ = ["LoadedModel", "ModelCard", "load_model", "normalize", "read_card", "resolve_device", "set_threads"]
