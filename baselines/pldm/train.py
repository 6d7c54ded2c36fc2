"""Train PLDM on a collected dataset, then export it for ``wmbench eval``.

    python -m baselines.pldm.train --config baselines/pldm/configs/cpu.toml [--dataset ID] [--out DIR] [--resume]

One training step is the PLDM recipe: the predictor is unrolled from the first frame of a window
of 1 + P frames (no teacher forcing), and six weighted terms keep the latents informative:

    z = encode(frames)                                        # [B, 1 + P, D]
    pred = unroll(z[:, 0], blocks[:, :P])                     # [B, P, D]
    loss = w_pred * mse(pred, z[:, 1:])
         + w_var * variance(z over the batch) + w_cov * covariance(z over the batch)
         + w_time_var * variance(z over time) + w_time_cov * covariance(z over time)
         + w_idm * mse(inverse(z[:, :-1], z[:, 1:]), blocks[:, :P])

The loop around it (data, validation, checkpoints and ``--resume``, export) is
``baselines/training.py``.
"""

from __future__ import annotations

import sys

import torch.nn.functional as F

from baselines import training
from baselines.pldm.model import PLDM, parameter_summary
from baselines.pldm.vicreg import covariance, variance


def build(config: dict, facts: dict) -> PLDM:
    return PLDM(**facts, **config["model"])


def losses(model: PLDM, pixels, blocks, train: dict, mixed_precision) -> dict:
    with mixed_precision():
        z = model.encode(pixels)
        pred = model.unroll(z[:, 0], blocks[:, :-1])
        inverse = model.inverse(z[:, :-1], z[:, 1:])
    z, pred, inverse = z.float(), pred.float(), inverse.float()
    terms = {
        "prediction": F.mse_loss(pred, z[:, 1:]),
        "variance": variance(z, dim=0),
        "covariance": covariance(z, dim=0),
        "time_variance": variance(z, dim=1),
        "time_covariance": covariance(z, dim=1),
        "inverse_dynamics": F.mse_loss(inverse, blocks[:, :-1].float()),
    }
    weights = train["weights"]
    return {"loss": sum(weights[name] * value for name, value in terms.items()), **terms}


PLDM_BASELINE = training.Baseline(name="pldm", build=build, losses=losses, parameters=parameter_summary)


def main(argv: list[str] | None = None) -> int:
    return training.main(PLDM_BASELINE, argv, description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
