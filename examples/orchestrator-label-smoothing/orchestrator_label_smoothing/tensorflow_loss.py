"""label_smoothing for the tensorflow backend: a builder spec -> (y_true, y_pred) -> mean loss."""

import tensorflow as tf


def build(spec):
    s, from_logits = spec["smoothing"], spec["from_logits"]

    def fn(y, y_pred):
        log_p = (tf.nn.log_softmax(y_pred, axis=-1) if from_logits
                 else tf.math.log(tf.clip_by_value(y_pred, 1e-7, 1 - 1e-7)))
        smoothed = (1 - s) * y + s / y.shape[-1]
        return -tf.reduce_mean(tf.reduce_sum(smoothed * log_p, axis=-1))
    return fn
