"""PHYRE-style puzzles: every template solvable and not solved passively, invalid actions, determinism, the env."""

import numpy as np
import pytest

from wmbench.envs.phyre import PhyreEnv, TEMPLATES, draw, is_valid, simulate, solve, task
from wmbench.envs.phyre.simulation import Scene, ball, box, wall
from wmbench.envs.phyre.templates import TASKS_PER_TEMPLATE

SAMPLE = (0, 17, 42, 63, 99)


@pytest.mark.parametrize("template", list(TEMPLATES))
def test_every_task_is_solvable_and_not_solved_passively(template):
    """All 100 tasks of each template: the oracle finds a valid solving ball, and doing nothing fails.
    The simulations stop once the outcome is decided; for a sample, the full 17 s agree."""
    for index in range(TASKS_PER_TEMPLATE):
        scene = task(template, index)
        assert not simulate(scene, stop_when_decided=True).solved, f"{template} task {index} solves itself"
        action = solve(scene)
        assert action is not None, f"{template} task {index}: the oracle finds no solution"
        assert is_valid(scene, action), f"{template} task {index}: the oracle's ball is invalid"
    for index in SAMPLE:
        scene = task(template, index)
        assert not simulate(scene).solved and simulate(scene, solve(scene)).solved


def test_every_scene_fits_the_state_and_its_designed_ball_is_valid():
    """25 templates; each scene leaves a state slot for the red ball, and the placement it was built around is valid
    (the roof's opening lets it through)."""
    from wmbench.envs.phyre.env import SLOTS

    assert len(TEMPLATES) == 25
    for template in TEMPLATES:
        for index in SAMPLE:
            scene = task(template, index)
            assert len(scene.things) < SLOTS and is_valid(scene, scene.designed), f"{template} task {index}"


def test_random_largest_balls_and_shares():
    from wmbench.envs.phyre.difficulty import largest_valid_placements, solved_share

    scene = task("stick_onto_box", 2)
    balls = largest_valid_placements(scene, 20, np.random.default_rng(0))
    assert balls.shape == (20, 3) and np.all(balls[:, 2] == 1.0) and all(is_valid(scene, ball) for ball in balls)
    assert solved_share(scene, [solve(scene)]) == 1.0 and solved_share(scene, [(0.5, 0.97, 0.0)]) == 0.0  # a tiny ball on the roof


def test_the_solving_share_by_radius_counts_every_placement_once():
    from wmbench.envs.phyre.difficulty import radius_table

    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in radius_table(tasks=1, samples=4).splitlines()[2:]]
    counts = [int(row[2]) for row in rows]
    assert len(rows) == 11 and sum(counts[:-1]) == counts[-1] == 25 * 4  # ten bands of r, then every placement
    assert rows[0][:2] == ["0.0-0.1", "2-5 px"] and rows[9][:2] == ["0.9-1.0", "29-32 px"]


def test_tasks_are_deterministic_and_checked():
    assert task("ball_into_jar", 7) == task(1, 7)
    assert task(0, 1) != task(0, 2)
    with pytest.raises(ValueError):
        task("no_such_template", 0)
    with pytest.raises(ValueError):
        task(0, 100)


def test_invalid_placements():
    scene = Scene((box(128, 3, 256, 6, "purple"), wall(80, 100, 140, 106), ball(130, 116, 10, "green")))
    assert is_valid(scene, (0.5, 0.8, 0.2))  # free space
    assert not is_valid(scene, (130 / 256, 116 / 256, 0.0))  # on the green ball
    assert not is_valid(scene, (110 / 256, 110 / 256, 0.2))  # overlaps the shelf
    assert not is_valid(scene, (0.01, 0.5, 0.2))  # partly outside the scene
    assert not is_valid(scene, (0.5, 0.99, 0.5))  # through the top edge
    rollout = simulate(scene, (0.01, 0.5, 0.2))
    assert not rollout.valid and not rollout.solved and rollout.steps == 0


def test_same_task_and_action_give_the_same_trajectory_and_pixels():
    scene = task("stick_onto_box", 3)
    action = solve(scene)
    first, second = simulate(scene, action, stride=10), simulate(scene, action, stride=10)
    assert first.poses.shape == (103, len(scene.things) + 1, 3)
    assert np.array_equal(first.poses, second.poses) and first.solved == second.solved
    with_ball = scene.with_ball(action)
    assert np.array_equal(draw(with_ball, first.poses[-1]), draw(with_ball, second.poses[-1]))
    assert draw(with_ball, first.poses[0], 64).shape == (64, 64, 3)


def test_env_solves_with_the_oracle_action_and_round_trips_state():
    env = PhyreEnv(resolution=64, variation={"template": "ball_off_shelf", "task": 5})
    obs, info = env.reset(seed=0)
    assert obs["pixels"].shape == (64, 64, 3) and obs["state"].shape == (77,) and obs["proprio"].tolist() == [0.0]
    action = np.array(solve(task(0, 5))) * 2 - 1
    obs, _, terminated, _, info = env.step(action)
    assert not terminated and not info["invalid"] and obs["proprio"][0] > 0
    env.step(action)
    saved, pixels = env.get_state(), env.render()
    env.set_state(saved)
    assert np.array_equal(env.get_state(), saved) and np.array_equal(env.render(), pixels)
    future = [env.step(action)[0]["state"] for _ in range(3)]
    env.set_state(saved)
    assert all(np.array_equal(env.step(action)[0]["state"], f) for f in future)
    for _ in range(20):
        _, reward, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            break
    assert info["success"] and reward == 1.0 and terminated

    other = PhyreEnv(resolution=64)
    other.reset(options={"state": saved})
    assert np.array_equal(other.get_state(), saved)


def test_env_invalid_action_ends_the_episode():
    env = PhyreEnv(resolution=32, variation={"template": 0, "task": 0})
    env.reset(seed=1)
    before = env.get_state()
    _, reward, terminated, _, info = env.step(np.array([-1.0, 0.0, 1.0]))  # the ball crosses the left edge
    assert info["invalid"] and terminated and reward == 0.0
    assert np.array_equal(env.get_state(), before)


def test_env_is_deterministic_and_perturbs():
    def run():
        env = PhyreEnv(resolution=48)
        obs, _ = env.reset(seed=3)
        frames = [obs["pixels"]]
        for _ in range(4):
            frames.append(env.step(np.array([0.0, 0.8, -0.5]))[0]["pixels"])
        return np.stack(frames), env

    first, env = run()
    second, _ = run()
    assert first.tobytes() == second.tobytes()

    _, info = env.perturb("teleport", position=(128, 200))
    assert info["perturbation"]["after"][:2] == [128, 200]
    _, info = env.perturb("recolor", target="goal", color=(1, 2, 3))
    assert env.variation["green_color"] == (1, 2, 3)

    env = PhyreEnv(resolution=48, variation={"template": "ball_off_shelf", "task": 0})
    env.reset(seed=0)
    green = env._world.goal
    _, info = env.perturb("pass_through", steps=60)
    assert info["perturbation"]["index"] == 3  # the shelf the green ball rests on
    env.step(np.array([0.0, 0.8, -0.9]))  # a small ball far from everything
    env.step(np.zeros(3))
    assert env.get_state()[5 + 6 * green + 1] < 100  # the ball fell through the shelf (top ~70-150)


def test_collect_draws_a_folds_training_tasks_and_labels_success(tmp_path, monkeypatch):
    """`wmbench collect` on PHYRE: random valid placements on the training side of a split only, each
    frame labelled by the success rule, the label that of the recorded placement's own simulation."""
    import minari

    from wmbench.data.collect import collect
    from wmbench.data.recipe import Recipe
    from wmbench.envs.phyre.splits import split_tasks
    from wmbench.envs.phyre.templates import parse_task_id

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    recipe = Recipe(name="phyre-train-v0", env="phyre", policy="random_valid", episodes=12, steps=18, resolution=32,
                    variation={"split": "cross", "fold": 0})
    collect(recipe, progress=False)
    _, test = split_tasks("cross", 0, seed=0)
    test_templates = {list(TEMPLATES).index(parse_task_id(t)[0]) for t in test}
    for episode in minari.load_dataset("phyre-train-v0").iterate_episodes():
        states = episode.infos["state"]
        template, index = int(states[0, 0]), int(states[0, 1])
        assert template not in test_templates
        placement = (episode.actions[0] + 1) / 2
        assert is_valid(task(template, index), placement) and not episode.actions[1:].any()
        assert states[1, 4] > 0 and episode.observations["pixels"].shape == (19, 32, 32, 3)
        solved = simulate(task(template, index), placement).solved
        assert episode.infos["success"].any() == solved  # the first frame after 3 s of touching, within 17 s
        assert not episode.infos["success"][:4].any()  # 3 s of contact cannot have passed by frame 3


def test_split_variation_is_checked():
    with pytest.raises(ValueError, match="within, cross"):
        PhyreEnv(variation={"split": "diagonal"})
    with pytest.raises(ValueError, match="fold=5 is out of range; give an integer from 0 to 4"):
        PhyreEnv(variation={"split": "within", "fold": 5})
    with pytest.raises(ValueError, match="leave `template` and `task` unset"):
        PhyreEnv(resolution=32, variation={"split": "within", "task": 3})
