"""Train PLDM on a collected dataset, then export it for ``wmbench eval``.

    python -m baselines.pldm.train --config baselines/pldm/configs/cpu.toml [--dataset ID] [--out DIR] [--resume]

One training step is the PLDM recipe: the predictor is unrolled from the first frame of a window
of 1 + P frames (no teacher forcing), and six weighted terms keep the latents informative
(``PLDM.loss`` in ``model.py``):

    z = encode(frames)                                        # [B, 1 + P, D]
    pred = unroll(z[:, 0], blocks[:, :P])                     # [B, P, D]
    loss = w_pred * mse(pred, z[:, 1:])
         + w_var * variance(z over the batch) + w_cov * covariance(z over the batch)
         + w_time_var * variance(z over time) + w_time_cov * covariance(z over time)
         + w_idm * mse(inverse(z[:, :-1], z[:, 1:]), blocks[:, :P])

The loop around it (data, autocast, backward, clipping, the optimizer step, validation,
checkpoints and ``--resume``, export) is ``baselines/training.py``.
"""

from __future__ import annotations

import sys

from baselines import training
from baselines.pldm.model import PLDM


def main(argv: list[str] | None = None) -> int:
    return training.main("pldm", PLDM, argv, description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
