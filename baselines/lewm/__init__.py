"""LeWM: a JEPA world model trained from pixels with a prediction loss and SIGReg, nothing else.

``sigreg.py`` is the regularizer, ``model.py`` the encoder and predictor, ``train.py`` the
training script (``python -m baselines.lewm.train --config baselines/lewm/configs/cpu.toml``).
"""

from baselines.lewm.model import LeWM, parameter_summary
from baselines.lewm.sigreg import sigreg

__all__ = ["LeWM", "parameter_summary", "sigreg"]
