"""PHYRE's learned reference agent (``dqn``): a network that scores (initial scene, action) -> solved,
trained on the split's training tasks, ranks random valid placements of each test task.

=================  ===========================================================================
scene              the task's initial scene drawn at 64 x 64, one channel per object color
                   (green, blue, purple, gray, black): each pixel's covered fraction
network            a conv encoder to 32 x 16 x 16 features of the scene; the action ``(x, y,
                   r)`` is fused there, as PHYRE's DQN does: an MLP of it scales and shifts
                   every feature channel, and the ball's footprint on the 16 x 16 grid joins
                   as one more channel; two strided convs and two linear layers give a logit
training data      ``samples_per_task`` random valid placements on every training task, each
                   labelled solved or not by the simulator; cached in ``cache_dir`` under a key
                   of the physics code, the training scenes, the sample count and the seed
training           ``steps`` Adam steps on binary cross-entropy, each batch half solved and half
                   unsolved placements (solving ones are rare: about 1%); one CPU thread,
                   so that the weights are the same bytes on every run with the same seed
ranking            ``candidates`` random valid placements per test task (the ones the
                   ``largest-ball`` agent ranks, from the same seed), best score first
weights            saved in ``cache_dir`` (or ``weights``) with the key they were trained under;
                   a rerun with the same training tasks and settings loads them
=================  ===========================================================================
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from wmbench.envs.phyre import simulation
from wmbench.envs.phyre.simulation import RADIUS_RANGE, SIZE, Scene, draw, initial_poses, random_valid_placements, simulate
from wmbench.envs.phyre.templates import parse_task_id, task
from wmbench.files import atomic_write
from wmbench.progress import progress_bar
from wmbench.protocol import PUZZLES
from wmbench.stats import binary_auroc

FORMAT = 1  # bump when the data, the network or its training change: old caches are then not reused
CHANNELS = ("green", "blue", "purple", "gray", "black")  # red is the action's ball, never in the initial scene
IMAGE = 64
GRID = 16  # where the action is fused: 16 x 16 cells of 16 px
SAMPLES_PER_TASK = PUZZLES.dqn_samples_per_task  # envs/phyre.md: the labelling time behind it
STEPS = PUZZLES.dqn_steps
BATCH = 64
LEARNING_RATE = 1e-3
CACHE_DIR = Path("runs/phyre/dqn")


def scene_channels(scene: Scene) -> np.ndarray:
    """``[5, 64, 64]`` float32: the fraction of each pixel covered by objects of each color, rows from the top."""
    ink = {name: (0, 0, 0) for name in CHANNELS}
    planes = []
    for color in CHANNELS:
        chosen = [i for i, thing in enumerate(scene.things) if thing.color == color]
        picture = draw(Scene(tuple(scene.things[i] for i in chosen)), initial_poses(scene)[chosen], IMAGE, ink)
        planes.append(1.0 - picture[..., 0] / 255.0)
    return np.stack(planes).astype(np.float32)


class SuccessNet(nn.Module):
    """Scene channels and actions -> the logit that the action solves the task."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(nn.Conv2d(len(CHANNELS), 16, 4, 2, 1), nn.ReLU(), nn.Conv2d(16, 32, 4, 2, 1), nn.ReLU())
        self.film = nn.Sequential(nn.Linear(3, 64), nn.ReLU(), nn.Linear(64, 2 * 32))
        self.head = nn.Sequential(nn.Conv2d(33, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 32, 3, 2, 1), nn.ReLU(), nn.Flatten(),
                                  nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 1))
        centres = (torch.arange(GRID, dtype=torch.float32) + 0.5) / GRID * SIZE
        self.register_buffer("cell_y", centres.flip(0).view(1, GRID, 1), persistent=False)  # rows run down, y up
        self.register_buffer("cell_x", centres.view(1, 1, GRID), persistent=False)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)

    def footprint(self, actions: torch.Tensor) -> torch.Tensor:
        """``[B, 1, 16, 16]``: how much of each cell the ball covers, softened over a cell's width."""
        low, high = RADIUS_RANGE
        x, y, radius = actions[:, 0, None, None] * SIZE, actions[:, 1, None, None] * SIZE, low + (high - low) * actions[:, 2, None, None]
        distance = torch.sqrt((self.cell_x - x) ** 2 + (self.cell_y - y) ** 2)
        return torch.sigmoid((radius - distance) / (SIZE / GRID / 2))[:, None]

    def score(self, features: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Logits ``[B]`` of ``actions`` ``[B, 3]`` on scene ``features`` (``[B, ...]`` or one scene's ``[1, ...]``)."""
        scale, shift = self.film(actions).chunk(2, dim=1)
        fused = torch.relu(features * (1 + scale[:, :, None, None]) + shift[:, :, None, None])
        return self.head(torch.cat([fused, self.footprint(actions)], dim=1))[:, 0]

    def forward(self, images: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.score(self.encode(images), actions)


@contextlib.contextmanager
def one_thread():
    """Torch on one CPU thread: float sums then come out the same whatever the machine's core count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def training_key(train_tasks: list[str], samples_per_task: int, seed: int, steps: int | None = None) -> str:
    """A digest of what the labelled data (and, with ``steps``, the trained weights) depend on: the physics code and the
    training scenes themselves."""
    digest = hashlib.sha256(repr((FORMAT, samples_per_task, seed, steps)).encode())
    digest.update(Path(simulation.__file__).read_bytes())  # the labels are the simulator's
    for tid in train_tasks:
        digest.update(repr((tid, task(*parse_task_id(tid)))).encode())
    return digest.hexdigest()[:16]


def label_placements(train_tasks: list[str], samples_per_task: int, seed: int, progress: bool = True) -> dict[str, np.ndarray]:
    """``samples_per_task`` random valid placements of each training task and whether each solves it."""
    rng = np.random.default_rng([seed, 2])
    actions, solved = [], []
    for tid in progress_bar(train_tasks, desc="dqn training data", unit="task", disable=not progress):
        scene = task(*parse_task_id(tid))
        placements = random_valid_placements(scene, samples_per_task, rng)
        actions.append(placements)
        solved.append([simulate(scene, action, stop_when_decided=True).solved for action in placements])
    return {"task": np.repeat(np.arange(len(train_tasks)), samples_per_task), "actions": np.concatenate(actions).astype(np.float32),
            "solved": np.array(solved, bool).ravel()}


def labelled_data(train_tasks: list[str], samples_per_task: int, seed: int, cache_dir: Path | None,
                  progress: bool = True) -> tuple[dict[str, np.ndarray], float]:
    """The labelled placements (from ``cache_dir`` when labelled before) and the seconds spent labelling them here (0 if cached)."""
    path = None if cache_dir is None else Path(cache_dir) / f"data-{training_key(train_tasks, samples_per_task, seed)}.npz"
    if path is not None and path.exists():
        try:
            with np.load(path) as cached:
                return {key: cached[key] for key in ("task", "actions", "solved")}, 0.0
        except (OSError, KeyError, ValueError) as error:
            raise ValueError(f"{path}: a damaged dqn training-data cache ({error}); delete it to label the placements again") from None
    start = time.perf_counter()
    data = label_placements(train_tasks, samples_per_task, seed, progress)
    seconds = time.perf_counter() - start
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: save_arrays(tmp, data))
    return data, seconds


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as file:  # a file object: ``np.savez`` would add ".npz" to the temporary's name
        np.savez(file, **arrays)


def train(images: np.ndarray, data: dict[str, np.ndarray], steps: int, seed: int) -> tuple[SuccessNet, float]:
    """A ``SuccessNet`` trained on the labelled placements of scenes ``images``, and its final mean loss (last 100 steps)."""
    solved = np.flatnonzero(data["solved"])
    unsolved = np.flatnonzero(~data["solved"])
    if len(solved) == 0 or len(unsolved) == 0:
        raise ValueError(f"the dqn agent's training data has {len(solved)} solving and {len(unsolved)} failing placements; "
                         "it needs both: raise --dqn-samples or train on more tasks")
    rng = np.random.default_rng([seed, 3])
    images, actions = torch.from_numpy(images), torch.from_numpy(data["actions"])
    labels, scene_of = torch.from_numpy(data["solved"].astype(np.float32)), torch.from_numpy(data["task"])
    with one_thread(), torch.random.fork_rng(devices=[]):  # the caller's torch seed is left as it was
        torch.manual_seed(seed)
        net = SuccessNet()
        optimizer = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
        losses = []
        for _ in range(steps):
            batch = torch.from_numpy(np.concatenate([rng.choice(solved, BATCH // 2), rng.choice(unsolved, BATCH // 2)]))
            logits = net(images[scene_of[batch]], actions[batch])
            loss = nn.functional.binary_cross_entropy_with_logits(logits, labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    net.eval()
    return net, float(np.mean(losses[-100:]))


@torch.no_grad()
def scores(net: SuccessNet, image: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """The network's logits of ``actions`` on the scene ``image`` (``[5, 64, 64]``), encoded once."""
    with one_thread():
        features = net.encode(torch.from_numpy(image)[None])
        return net.score(features, torch.from_numpy(np.asarray(actions, np.float32))).numpy()


def trained_agent(train_tasks: list[str], *, candidates: int = PUZZLES.candidates, samples_per_task: int = SAMPLES_PER_TASK,
                  steps: int = STEPS, seed: int = 0, cache_dir: str | Path | None = CACHE_DIR, weights: str | Path | None = None,
                  progress: bool = True) -> DQNAgent:
    """A ``DQNAgent`` whose network is trained on ``train_tasks``, or loaded when trained before with the same tasks and settings.

    The network is saved at ``weights`` (default: in ``cache_dir``; with neither, it is not saved)."""
    for name, value in (("candidates", candidates), ("dqn-samples", samples_per_task), ("dqn-steps", steps)):
        if value < 1:
            raise ValueError(f"--{name} {value}: must be at least 1")
    key = training_key(train_tasks, samples_per_task, seed, steps)
    path = Path(weights) if weights is not None else None if cache_dir is None else Path(cache_dir) / f"weights-{key}.pt"
    timing = {"label_s": 0.0, "train_s": 0.0}
    loaded = path is not None and path.exists()
    if loaded:
        net, figures = load_network(path, key)
    else:
        data, timing["label_s"] = labelled_data(train_tasks, samples_per_task, seed, cache_dir, progress)
        images = np.stack([scene_channels(task(*parse_task_id(tid))) for tid in train_tasks])
        start = time.perf_counter()
        net, loss = train(images, data, steps, seed)
        timing["train_s"] = time.perf_counter() - start
        train_scores = np.concatenate([scores(net, images[i], data["actions"][data["task"] == i]) for i in range(len(train_tasks))])
        figures = {"positives": int(data["solved"].sum()), "examples": int(len(data["solved"])), "final_loss": loss,
                   "train_auroc": binary_auroc(train_scores, data["solved"])}  # the data is in task order
        if path is not None:
            saved = {"key": key, "state": net.state_dict(), "figures": figures}
            atomic_write(path, lambda tmp: torch.save(saved, tmp))
    training = {**figures, "parameters": sum(p.numel() for p in net.parameters()),
                "weights_sha256": None if path is None else hashlib.sha256(path.read_bytes()).hexdigest(), "loaded": loaded}
    settings = {"candidates": candidates, "samples_per_task": samples_per_task, "steps": steps, "training": training}
    return DQNAgent(net, candidates, settings, timing)


def load_network(path: Path, key: str) -> tuple[SuccessNet, dict[str, Any]]:
    """The network saved at ``path`` and its training figures; it must have been trained under ``key``."""
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # an untrusted file: whatever torch makes of it, one clear line
        raise ValueError(f"--dqn-weights {path}: not a dqn network ({error}); delete it, or pass another path to train anew") from None
    if not isinstance(saved, dict) or not {"key", "state", "figures"} <= saved.keys():
        raise ValueError(f"--dqn-weights {path}: not a dqn network (it lacks key, state or figures); delete it, or pass another path to train anew")
    if saved["key"] != key:
        raise ValueError(f"--dqn-weights {path}: trained on other tasks or settings (key {saved['key']}, these give {key}); "
                         "delete it, or pass another path to train anew")
    net = SuccessNet()
    try:
        net.load_state_dict(saved["state"])
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"--dqn-weights {path}: not this dqn network ({error}); delete it, or pass another path to train anew") from None
    net.eval()
    return net, saved["figures"]


class DQNAgent:
    """Ranks each task's ``candidates`` random valid placements by a ``SuccessNet``'s score, best first."""

    def __init__(self, net: SuccessNet, candidates: int = PUZZLES.candidates, settings: dict[str, Any] | None = None,
                 timing: dict[str, float] | None = None):
        self.net, self.candidates = net, candidates
        self.settings = settings or {"candidates": candidates}  # what the results record
        self.timing = timing or {}

    def scores(self, scene: Scene, actions: np.ndarray) -> np.ndarray:
        return scores(self.net, scene_channels(scene), actions)

    def __call__(self, scene: Scene, rng: np.random.Generator) -> Iterator[np.ndarray]:
        actions = random_valid_placements(scene, self.candidates, rng)
        yield from actions[np.argsort(-self.scores(scene, actions), kind="stable")]
