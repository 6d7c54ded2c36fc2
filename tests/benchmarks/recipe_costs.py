"""Seconds per episode of each full recipe on one core, to size a cluster: ``python tests/benchmarks/recipe_costs.py``.

Collects the first episodes of every full recipe in ``datasets/`` with one worker (start-up and
merge included, so the figures lean high) into a temporary folder, and writes
``recipe_costs.json`` beside this file.
"""

import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

MEASURED = {"pusht-weak": 10, "tworoom-expert": 10, "reacher-random": 4, "cube-oracle": 2, "phyre-random-within0": 20}


def main() -> None:
    os.environ["MINARI_DATASETS_PATH"] = tempfile.mkdtemp(prefix="recipe-costs-")
    from wmbench.data.collect import collect
    from wmbench.data.recipe import Recipe

    datasets = Path(__file__).parents[2] / "datasets"
    costs = {}
    for name, episodes in MEASURED.items():
        recipe = Recipe.load(datasets / f"{name}.toml")
        began = time.perf_counter()
        collect(replace(recipe, name=f"cost-{name}-v0", episodes=episodes), workers=1, progress=False)
        seconds = (time.perf_counter() - began) / episodes
        costs[name] = {"s_per_episode": seconds, "episodes": recipe.episodes, "core_hours": seconds * recipe.episodes / 3600}
        print(f"{name}: {seconds:.3f} s per episode, {costs[name]['core_hours']:.1f} core-hours for {recipe.episodes} episodes")
    (Path(__file__).parent / "recipe_costs.json").write_text(json.dumps(costs, indent=1))


if __name__ == "__main__":
    main()
