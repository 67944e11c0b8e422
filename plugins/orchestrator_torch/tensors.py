"""NumPy <-> torch conversion at the backend boundary: dtypes, devices, copy avoidance."""

from __future__ import annotations

import numpy as np
import torch

from orchestrator.contract.model import check_dtype

TORCH_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}
_NUMPY_DTYPES: dict[torch.dtype, np.dtype] = {
    torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64),
    torch.int64: np.dtype(np.int64)}
_TORCH_DTYPES = {numpy: torch for torch, numpy in _NUMPY_DTYPES.items()}


def torch_dtype(dtype: str) -> torch.dtype:
    """The torch dtype of a canonical dtype name ("float32" or "float64")."""
    return TORCH_DTYPES[check_dtype(dtype)]


def resolve_device(device: str | None) -> torch.device:
    """``None`` picks the first CUDA device when there is one, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def to_tensor(array: np.ndarray, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A tensor of ``dtype`` on ``device``, sharing memory with ``array`` when possible.

    ``torch.from_numpy`` needs a writable array with non-negative strides; anything else (or a
    dtype change) is copied once here, so the hot path never copies an already fitting batch.
    """
    array = np.asarray(array)
    np_dtype = _NUMPY_DTYPES[dtype]
    if array.dtype != np_dtype:
        array = array.astype(np_dtype)
    elif not array.flags.writeable or any(s < 0 for s in array.strides):
        array = array.copy()
    tensor = torch.from_numpy(array)
    if tensor.device != device:
        tensor = tensor.to(device, non_blocking=True)
    return tensor


def as_tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """``to_tensor`` keeping the array's own dtype (float32, float64 or int64)."""
    array = np.asarray(array)
    return to_tensor(array, _TORCH_DTYPES[array.dtype], device)


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A NumPy copy that never aliases a live parameter or buffer."""
    return tensor.detach().cpu().numpy().copy()
