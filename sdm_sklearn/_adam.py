"""Adam (Kingma and Ba, 2015) without weight decay, as one numba kernel."""

import numpy as np
from numba import njit

ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPSILON = 1e-8


@njit(cache=True, nogil=True, error_model="numpy")
def adam_step(params, grads, first_moment, second_moment, step_size,
              bias_correction2):
    """In-place Adam update over flat float32 arrays (no weight decay).

    All arithmetic stays in float32 (constants included) and division follows
    numpy's error model (no per-element zero check), so that the loop
    vectorizes; ``step_size`` already holds the first-moment bias correction.
    """
    beta1 = np.float32(ADAM_BETA1)
    beta2 = np.float32(ADAM_BETA2)
    one = np.float32(1.0)
    epsilon = np.float32(ADAM_EPSILON)
    for i in range(params.shape[0]):
        g = grads[i]
        m = beta1 * first_moment[i] + (one - beta1) * g
        v = beta2 * second_moment[i] + (one - beta2) * g * g
        first_moment[i] = m
        second_moment[i] = v
        params[i] -= step_size * m / (np.sqrt(v / bias_correction2) + epsilon)


class AdamState:
    """Moments and step count of Adam for one flat parameter array.

    Parameters
    ----------
    params : ndarray of shape (n_params,), float32
    """

    def __init__(self, params):
        self.step = 0
        self.first_moment = np.zeros_like(params)
        self.second_moment = np.zeros_like(params)

    def update(self, params, grads, learning_rate):
        """One Adam step on ``params`` in place."""
        self.step += 1
        adam_step(
            params, grads, self.first_moment, self.second_moment,
            np.float32(learning_rate / (1.0 - ADAM_BETA1**self.step)),
            np.float32(1.0 - ADAM_BETA2**self.step),
        )
