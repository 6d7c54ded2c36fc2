"""Train LeWM on a collected dataset, then export it for ``wmbench eval``.

    python -m baselines.lewm.train --config baselines/lewm/configs/cpu.toml [--dataset ID] [--out DIR] [--resume]

One training step is the LeWM recipe, and nothing else (no EMA, no stop-gradient, no pretrained
weights); ``LeWM.loss`` in ``model.py`` is these three lines:

    z = encode(frames)                                   # [B, T, D]
    pred = predict(z[:, :-1], blocks[:, :-1])            # frame t and its action block -> frame t + 1
    loss = mse(pred, z[:, 1:]) + lambda * sigreg(z)

The loop around it (data, autocast, backward, clipping, the optimizer step, validation,
checkpoints and ``--resume``, export) is ``baselines/training.py``.
"""

from __future__ import annotations

import sys

from baselines import training
from baselines.lewm.model import LeWM


def main(argv: list[str] | None = None) -> int:
    return training.main("lewm", LeWM, argv, description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
