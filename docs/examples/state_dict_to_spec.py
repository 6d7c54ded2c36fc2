"""From the state_dict your training code saved to a spec wmbench loads: the class, its config, the weights.

Run it from the folder that should hold the spec; then `wmbench export` (with my_models.py on PYTHONPATH).
"""

import torch

import wmbench
from my_models import ConvWorldModel

config = {"image_size": 64, "latent_dim": 32}
torch.save(ConvWorldModel(**config).state_dict(), "weights.pt")  # stands in for your training run's output

# conv-model.json + conv-model.safetensors; checked first: ConvWorldModel(**config) takes the weights, strictly
wmbench.save_spec("conv-model.json", factory="my_models:ConvWorldModel", config=config, weights="weights.pt")
