"""C-JEPA: an object-centric JEPA world model; a bidirectional transformer predicts the slots of
whole objects masked over time, and of the next frames, from the other slots and the actions.

``model.py`` is the slot encoder and decoder, the predictor, the object masking and the training
loss, ``train.py`` the training command (``python -m baselines.cjepa.train --config baselines/cjepa/configs/cpu.toml``).
"""

from baselines.cjepa.model import CJEPA, draw_masked_slots, object_mask, reconstruction_error

__all__ = ["CJEPA", "draw_masked_slots", "object_mask", "reconstruction_error"]
