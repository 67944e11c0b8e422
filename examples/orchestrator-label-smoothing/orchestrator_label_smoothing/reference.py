"""The NumPy float64 reference of label smoothing: what every backend is checked against."""

import numpy as np

CLIP = 1e-7


def label_smoothing(y_true, y_pred, *, smoothing, from_logits):
    y = np.asarray(y_true, dtype=np.float64)
    z = np.asarray(y_pred, dtype=np.float64)
    if from_logits:
        shifted = z - z.max(axis=-1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    else:
        log_p = np.log(np.clip(z, CLIP, 1 - CLIP))
    smoothed = (1 - smoothing) * y + smoothing / y.shape[-1]
    return float(-(smoothed * log_p).sum(axis=-1).mean())
