"""rex-xai ``--script``: load a NIfTI volume for its voxel mode (its CLI cannot load NIfTI itself).

rex-xai calls ``preprocess(path, model_shape, device)`` and expects its own ``Data`` object. Voxel mode takes
the volume as (1, D, H, W) with no channel axis: the ONNX model it is given adds the channel inside. The
array is used as stored (the benchmark writes it already normalised), in numpy (D, H, W) = (z, y, x) order,
the order the other tools see.
"""

import nibabel as nib
import numpy as np
import torch as tt
from rex_xai.input.input_data import Data


def preprocess(path, shape, device, mode="voxel"):
    volume = np.asarray(nib.load(path).dataobj, dtype=np.float32)  # nibabel gives (x, y, z)
    volume = np.ascontiguousarray(volume.transpose(2, 1, 0))  # -> (z, y, x), as SimpleITK / numpy order
    tensor = tt.from_numpy(volume)[None].to(device)
    return Data(tensor, shape, device, mode="voxel", process=True)
