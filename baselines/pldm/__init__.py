"""PLDM: a world model trained from pixels with a multi-step prediction loss, VICReg's variance and
covariance terms over the batch and over time, and inverse dynamics.

``vicreg.py`` is the regularizer, ``model.py`` the encoder, predictor and inverse-dynamics head,
``train.py`` the training script (``python -m baselines.pldm.train --config baselines/pldm/configs/cpu.toml``).
"""

from baselines.pldm.model import PLDM, parameter_summary
from baselines.pldm.vicreg import covariance, variance

__all__ = ["PLDM", "covariance", "parameter_summary", "variance"]
