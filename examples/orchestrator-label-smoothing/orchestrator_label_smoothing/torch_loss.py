"""label_smoothing for the torch backend: a builder spec -> (y_true, y_pred) -> mean loss."""

import torch


def build(spec):
    s, from_logits = spec["smoothing"], spec["from_logits"]

    def fn(y, y_pred):
        log_p = (torch.log_softmax(y_pred, dim=-1) if from_logits
                 else torch.log(torch.clamp(y_pred, 1e-7, 1 - 1e-7)))
        smoothed = (1 - s) * y + s / y.shape[-1]
        return -(smoothed * log_p).sum(dim=-1).mean()
    return fn
