"""PLDM: a world model trained from pixels with a multi-step prediction loss, VICReg's variance and
covariance terms over the batch and over time, and inverse dynamics.

``vicreg.py`` is the regularizer, ``model.py`` the encoder, predictor, inverse-dynamics head and
training loss, ``train.py`` the training command (``python -m baselines.pldm.train --config baselines/pldm/configs/cpu.toml``).
"""

from baselines.pldm.model import PLDM
from baselines.pldm.vicreg import covariance, variance

__all__ = ["PLDM", "covariance", "variance"]
