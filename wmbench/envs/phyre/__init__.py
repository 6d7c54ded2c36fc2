"""PHYRE-style physical puzzles, ball tier: scenes and physics, templates with an oracle, the env."""

from wmbench.envs.phyre.env import PhyreEnv
from wmbench.envs.phyre.simulation import Scene, Thing, draw, is_valid, simulate
from wmbench.envs.phyre.templates import TEMPLATES, solve, task

__all__ = ["PhyreEnv", "Scene", "Thing", "TEMPLATES", "draw", "is_valid", "simulate", "solve", "task"]
