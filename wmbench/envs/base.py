"""The environment contract every wmbench environment implements, written once.

An environment subclasses :class:`WorldModelEnv` and fills in the physics (``_sample_state``,
``_sample_goal_state``, ``_load_state``, ``get_state``, ``_simulate``), the picture of a state
(``_draw``), the success rule with its reward and diagnostics (``_evaluate``), the names and bounds of its state (``proprio`` is a named
subset of it), its variation factors and its perturbations. Everything a
benchmark relies on is done here, the same way for every environment:

============================  =================================================================
observation                   dict with ``pixels`` (uint8 HxWx3, ``resolution=`` to change),
                              ``state`` (float32 privileged state), ``proprio`` (float32, agent
                              only); ``obs_type`` picks which keys are computed and returned
action                        normalized to [-1, 1]; a wrong shape, a non-numeric or a
                              non-finite action raises ``ValueError``; finite values outside
                              the box are clipped (with one warning per env)
``reset(seed, options)``      options ``state``, ``goal_state`` (else sampled from the seed),
                              ``variation`` (merged over the constructor's); any other key
                              raises ``ValueError``
reset ``info``                ``goal`` (pixels of the goal state), ``goal_state`` (float64,
                              exact), ``success``
                              (a start that already satisfies its goal shows ``True`` here)
step ``info``                 ``success`` by the env's ``success_rule``, plus env extras
termination                   on success, unless ``terminate_on_success=False``
``get_state``/``set_state``   exact round trip; the future after ``set_state(s)`` depends on
                              ``s`` alone, as after ``reset(options={"state": s})``
determinism                   same seed and actions give identical observation bytes, in any
                              process
``variation``                 named visual and physical factors (``VARIATIONS``) or a preset
                              name (``PRESETS``); the defaults give the standard env
``perturb(kind, **kw)``       ``"teleport"`` and ``"recolor"`` for violation-of-expectation
                              tests; returns ``(obs, info)`` with what changed in ``info``
============================  =================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from PIL import ImageColor

OBS_KEYS = ("pixels", "state", "proprio")


@dataclass(frozen=True)
class Factor:
    """One variation factor: its default (the standard env), what it means, and a validator."""

    default: Any
    doc: str
    check: Callable[[str, Any], Any]  # (name, value) -> normalized value, or raises ValueError


def color(name: str, value: Any) -> tuple[int, int, int]:
    """A color given by CSS name (``"RoyalBlue"``) or as an RGB triple of 0-255 integers."""
    if isinstance(value, str):
        try:
            return ImageColor.getrgb(value)[:3]
        except ValueError:
            raise ValueError(f"variation {name}={value!r}: unknown color name; give a CSS name or an RGB triple such as (255, 0, 0)") from None
    rgb = np.asarray(value)
    if rgb.shape != (3,) or not np.all((rgb >= 0) & (rgb <= 255)):
        raise ValueError(f"variation {name}={value!r}: a color is a name or an RGB triple of integers in 0-255")
    return tuple(int(c) for c in rgb)


def positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"variation {name}={value!r}: must be a finite number > 0")
    return float(value)


def non_negative(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not np.isfinite(value) or value < 0:
        raise ValueError(f"variation {name}={value!r}: must be a finite number >= 0")
    return float(value)


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"variation {name}={value!r}: must be True or False")
    return bool(value)


def parse_resolution(resolution: int | Sequence[int]) -> tuple[int, int]:
    """``224`` or ``(height, width)`` -> ``(height, width)``."""
    size = (resolution, resolution) if np.isscalar(resolution) else tuple(resolution)
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and s >= 8 for s in size):
        raise ValueError(f"resolution={resolution!r}: give an integer >= 8 (square) or a (height, width) pair of them")
    return int(size[0]), int(size[1])


class WorldModelEnv(gym.Env):
    """Base class of every wmbench environment; see the module docstring for the contract."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 10}

    # Filled in by each environment.
    env_name: ClassVar[str]  # "PushT"
    state_names: ClassVar[tuple[str, ...]]
    state_low: ClassVar[tuple[float, ...]]  # bounds of the observation space's `state` box
    state_high: ClassVar[tuple[float, ...]]
    proprio_names: ClassVar[tuple[str, ...]]  # a subset of state_names
    action_names: ClassVar[tuple[str, ...]]
    success_text: ClassVar[str]  # the success rule in one line, for `wmbench envs` and the cards
    VARIATIONS: ClassVar[dict[str, Factor]]
    PRESETS: ClassVar[dict[str, dict[str, Any]]]
    PERTURBATIONS: ClassVar[tuple[str, ...]] = ("teleport", "recolor")
    RECOLOR_TARGETS: ClassVar[dict[str, str]]  # what `perturb("recolor", target=...)` can repaint -> its color factor

    def __init__(
        self,
        resolution: int | Sequence[int] = 224,
        obs_type: str | Sequence[str] = OBS_KEYS,
        variation: str | dict[str, Any] | None = None,
        terminate_on_success: bool = True,
        render_mode: str | None = "rgb_array",
    ):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r}: wmbench envs render 'rgb_array' only (they are headless)")
        self.render_mode = render_mode
        self.height, self.width = parse_resolution(resolution)
        self.obs_keys = self._parse_obs_type(obs_type)
        self.terminate_on_success = bool(terminate_on_success)
        self._base_variation = self.resolve_variation(variation)
        self.variation = dict(self._base_variation)

        low, high = np.array(self.state_low, np.float32), np.array(self.state_high, np.float32)
        self._proprio_index = [self.state_names.index(name) for name in self.proprio_names]
        boxes = {
            "pixels": spaces.Box(0, 255, (self.height, self.width, 3), np.uint8),
            "state": spaces.Box(low, high, dtype=np.float32),
            "proprio": spaces.Box(low[self._proprio_index], high[self._proprio_index], dtype=np.float32),
        }
        self.observation_space = spaces.Dict({key: boxes[key] for key in self.obs_keys})
        self.action_space = spaces.Box(-1.0, 1.0, (len(self.action_names),), np.float32)
        self._goal_state: np.ndarray | None = None
        self._warned_clip = False

    # ------------------------------------------------------------------ to implement
    def _sample_state(self, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def _sample_goal_state(self, rng: np.random.Generator, start: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _load_state(self, state: np.ndarray) -> None:
        """Put the simulation in ``state`` (already validated), forgetting any history."""
        raise NotImplementedError

    def get_state(self) -> np.ndarray:
        """The full simulation state (float64): ``set_state(get_state())`` changes nothing."""
        raise NotImplementedError

    def _simulate(self, action: np.ndarray) -> None:
        """Advance one control step with a validated action in [-1, 1]."""
        raise NotImplementedError

    def _draw(self, state: np.ndarray) -> np.ndarray:
        """The picture of ``state`` under the current variation: uint8 (height, width, 3)."""
        raise NotImplementedError

    def _evaluate(self, state: np.ndarray, goal_state: np.ndarray) -> tuple[bool, float, dict[str, Any]]:
        """Success by the env's rule, the reward, and diagnostics for the step's ``info``."""
        raise NotImplementedError

    def goal_cost(self, state: np.ndarray, goal_state: np.ndarray) -> float:
        """How far ``state`` is from ``goal_state`` in units of the success tolerances (about 1 at
        the edge of success): the cost the oracle planner minimizes with the true simulator."""
        raise NotImplementedError

    def _apply_variation(self) -> None:
        """React to a change of ``self.variation`` (rebuild geometry, caches)."""

    # ------------------------------------------------------------------ the contract
    def success_rule(self, state, goal_state) -> bool:
        """Whether ``state`` satisfies ``goal_state`` by this env's documented rule."""
        return self._evaluate(np.asarray(state, np.float64), np.asarray(goal_state, np.float64))[0]

    @classmethod
    def resolve_variation(cls, variation: str | dict[str, Any] | None, base: dict[str, Any] | None = None) -> dict:
        """Validate ``variation`` (a dict of factors or a preset name) over ``base`` (default: the standard env)."""
        if isinstance(variation, str):
            if variation not in cls.PRESETS:
                raise ValueError(f"unknown variation preset {variation!r} for {cls.env_name}; presets: {sorted(cls.PRESETS)}")
            variation = cls.PRESETS[variation]
        if variation is not None and not isinstance(variation, dict):
            raise ValueError(f"variation must be a dict of factors or a preset name, got {type(variation).__name__}")
        resolved = dict(base) if base is not None else {k: f.check(k, f.default) for k, f in cls.VARIATIONS.items()}
        for name, value in (variation or {}).items():
            if name not in cls.VARIATIONS:
                raise ValueError(f"unknown variation factor {name!r} for {cls.env_name}; factors: {sorted(cls.VARIATIONS)}")
            resolved[name] = cls.VARIATIONS[name].check(name, value)
        return resolved

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"state", "goal_state", "variation"}
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; {self.env_name} takes 'state', 'goal_state' and 'variation'")
        self.variation = self.resolve_variation(options.get("variation"), base=self._base_variation)
        self._apply_variation()

        start = options.get("state")
        start = self._sample_state(self.np_random) if start is None else self._check_state(start, "options['state']")
        goal = options.get("goal_state")
        goal = self._sample_goal_state(self.np_random, start) if goal is None else self._check_state(goal, "options['goal_state']")
        self._goal_state = goal
        self._load_state(start)

        state = self.get_state()
        info = {
            "goal": self._draw(goal),
            "goal_state": goal.copy(),  # float64: resetting to it reproduces the goal image exactly
            "success": self._evaluate(state, goal)[0],
        }
        return self._observation(state), info

    def step(self, action):
        if self._goal_state is None:
            raise gym.error.ResetNeeded(f"{self.env_name}: call reset() before step()")
        self._simulate(self._check_action(action))
        state = self.get_state()
        success, reward, diagnostics = self._evaluate(state, self._goal_state)
        terminated = success and self.terminate_on_success
        return self._observation(state), reward, terminated, False, {"success": success, **diagnostics}

    def set_state(self, state) -> None:
        """Put the env in ``state`` (as returned by ``get_state``); the goal is unchanged."""
        if self._goal_state is None:
            raise gym.error.ResetNeeded(f"{self.env_name}: call reset() before set_state()")
        self._load_state(self._check_state(state, "state"))

    @property
    def goal_state(self) -> np.ndarray:
        return self._goal_state.copy()

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            return None
        return self._draw(self.get_state())

    def render_state(self, state) -> np.ndarray:
        """The picture of any state (e.g. a goal) without touching the simulation."""
        return self._draw(self._check_state(state, "state"))

    def perturb(self, kind: str, **kwargs):
        """Apply a violation-of-expectation perturbation now; returns ``(obs, info)``.

        ``info["perturbation"]`` records what changed. The effect lasts until the next reset.
        """
        if self._goal_state is None:
            raise gym.error.ResetNeeded(f"{self.env_name}: call reset() before perturb()")
        if kind not in self.PERTURBATIONS:
            raise ValueError(f"unknown perturbation {kind!r} for {self.env_name}; supported: {list(self.PERTURBATIONS)}")
        details = getattr(self, f"_perturb_{kind}")(**kwargs)
        return self._observation(self.get_state()), {"perturbation": {"kind": kind, **details}}

    def _perturb_recolor(self, target: str | None = None, color=None) -> dict[str, Any]:
        """Repaint ``target`` (default: the first of ``RECOLOR_TARGETS``) in ``color``, or a random one."""
        target = target or next(iter(self.RECOLOR_TARGETS))
        if target not in self.RECOLOR_TARGETS:
            raise ValueError(f"recolor target={target!r}: {self.env_name} recolors {list(self.RECOLOR_TARGETS)}")
        key = self.RECOLOR_TARGETS[target]
        before = self.variation[key]
        if color is None:
            color = tuple(int(c) for c in self.np_random.integers(0, 256, size=3))
        self.variation = self.resolve_variation({key: color}, base=self.variation)
        self._apply_variation()
        return {"target": target, "before": before, "after": self.variation[key]}

    # ------------------------------------------------------------------ helpers
    def _observation(self, state: np.ndarray) -> dict[str, np.ndarray]:
        obs = {}
        if "pixels" in self.obs_keys:
            obs["pixels"] = self._draw(state)
        if "state" in self.obs_keys:
            obs["state"] = state.astype(np.float32)
        if "proprio" in self.obs_keys:
            obs["proprio"] = state[self._proprio_index].astype(np.float32)
        return obs

    def _check_action(self, action) -> np.ndarray:
        try:
            a = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{self.env_name}: the action must be numeric, got {action!r}") from None
        if a.shape != self.action_space.shape:
            raise ValueError(
                f"{self.env_name}: the action must have shape {self.action_space.shape} "
                f"({', '.join(self.action_names)}, each in [-1, 1]), got shape {a.shape}"
            )
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{self.env_name}: the action must be finite, got {a.tolist()}")
        if np.any(np.abs(a) > 1.0):
            if not self._warned_clip:
                gym.logger.warn(f"{self.env_name}: actions are normalized to [-1, 1]; clipping {a.tolist()} (warned once)")
                self._warned_clip = True
            a = np.clip(a, -1.0, 1.0)
        return a

    def _check_state(self, state, what: str) -> np.ndarray:
        try:
            s = np.array(state, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{self.env_name}: {what} must be numeric, got {state!r}") from None
        if s.shape != (len(self.state_names),):
            raise ValueError(
                f"{self.env_name}: {what} must have shape ({len(self.state_names)},) "
                f"[{', '.join(self.state_names)}], got shape {s.shape}"
            )
        if not np.all(np.isfinite(s)):
            raise ValueError(f"{self.env_name}: {what} must be finite, got {s.tolist()}")
        return s

    @staticmethod
    def _parse_obs_type(obs_type: str | Sequence[str]) -> tuple[str, ...]:
        keys = (obs_type,) if isinstance(obs_type, str) else tuple(obs_type)
        if keys == ("all",):
            keys = OBS_KEYS
        if not keys or any(k not in OBS_KEYS for k in keys):
            raise ValueError(f"obs_type={obs_type!r}: choose any of {OBS_KEYS} (or 'all')")
        return tuple(k for k in OBS_KEYS if k in keys)
