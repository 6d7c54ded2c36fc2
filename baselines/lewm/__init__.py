"""LeWM: a JEPA world model trained from pixels with a prediction loss and SIGReg, nothing else.

``sigreg.py`` is the regularizer, ``model.py`` the encoder, the predictor and the training loss,
``train.py`` the training command (``python -m baselines.lewm.train --config baselines/lewm/configs/cpu.toml``).
"""

from baselines.lewm.model import LeWM
from baselines.lewm.sigreg import sigreg

__all__ = ["LeWM", "sigreg"]
