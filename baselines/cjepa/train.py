"""Train C-JEPA on a collected dataset, then export it for ``wmbench eval``.

    python -m baselines.cjepa.train --config baselines/cjepa/configs/cpu.toml [--dataset ID] [--out DIR] [--resume]

One training step is the C-JEPA recipe on a window of H history frames and P frames to predict
(``CJEPA.loss`` in ``model.py``):

    z = encode(frames)                                                # [B, H + P, S, D] object slots
    masked = object_mask(draw(mask_slots objects), H, P)              # their history after frame 0, and frames H..
    pred = predict(z.detach()[:, :H], blocks[:, :H + P - 1], masked)  # a masked token: its anchor + mask embedding
    loss = mse(pred, z.detach()) on the frames to predict + mse on the masked history
         + w * mse(decode(z), frames)                                 # the encoder learns from this term only

``configs/cpu-no-mask.toml`` is OC-JEPA: the same with ``mask_slots = 0``. The loop around it
(data, autocast, backward, clipping, the optimizer step, validation, checkpoints and ``--resume``,
export) is ``baselines/training.py``.
"""

from __future__ import annotations

import sys

from baselines import training
from baselines.cjepa.model import CJEPA


def main(argv: list[str] | None = None) -> int:
    return training.main("cjepa", CJEPA, argv, description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
