"""Image input/output: SimpleITK reading, geometry-exact writing, Slicer segmentations, atomic files."""

from .atomic import atomic_directory, atomic_path
from .images import Volume, image_like, read_image, write_image
from .segmentation import write_segmentation

__all__ = ["Volume", "atomic_directory", "atomic_path", "image_like", "read_image", "write_image", "write_segmentation"]
