"""Train LeWM on a collected dataset, then export it for ``wmbench eval``.

    python -m baselines.lewm.train --config baselines/lewm/configs/cpu.toml [--dataset ID] [--out DIR] [--resume]

One training step is the LeWM recipe, and nothing else (no EMA, no stop-gradient, no pretrained
weights):

    z = encode(frames)                                   # [B, T, D]
    pred = predict(z[:, :-1], blocks[:, :-1])            # frame t and its action block -> frame t + 1
    loss = mse(pred, z[:, 1:]) + lambda * sigreg(z)

The loop around it (data, validation, checkpoints and ``--resume``, export) is
``baselines/training.py``.
"""

from __future__ import annotations

import sys

import torch.nn.functional as F

from baselines import training
from baselines.lewm.model import LeWM, parameter_summary
from baselines.lewm.sigreg import sigreg


def build(config: dict, facts: dict) -> LeWM:
    data = config["data"]
    return LeWM(**facts, max_frames=data["history"] + data["predictions"] - 1, **config["model"])  # the teacher-forced window


def losses(model: LeWM, pixels, blocks, train: dict, mixed_precision) -> dict:
    with mixed_precision():
        z = model.encode(pixels)
        pred = model.predict(z[:, :-1], blocks[:, :-1])
    prediction = F.mse_loss(pred.float(), z[:, 1:].float())
    regularizer = sigreg(z.float(), train["sigreg_projections"])
    return {"loss": prediction + train["sigreg_weight"] * regularizer, "prediction": prediction, "sigreg": regularizer}


LEWM = training.Baseline(name="lewm", build=build, losses=losses, parameters=parameter_summary)


def main(argv: list[str] | None = None) -> int:
    return training.main(LEWM, argv, description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
