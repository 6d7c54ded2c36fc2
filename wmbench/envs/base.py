"""The environment contract every wmbench environment implements, written once.

An environment subclasses :class:`WorldModelEnv` and fills in the physics (``_sample_state``,
``_sample_goal_state``, ``_load_state``, ``get_state``, ``_simulate``), the picture of a state
(``_draw``), the success rule with its reward and diagnostics (``_evaluate``), the names and bounds of its state (``proprio`` is a named
subset of it), its variation factors and its perturbations. Everything a
benchmark relies on is done here, the same way for every environment:

============================  =================================================================
observation                   dict with ``pixels`` (uint8 HxWx3, ``resolution=`` to change),
                              ``state`` (float32 privileged state), ``proprio`` (float32, agent
                              only); ``obs_type`` picks which keys are computed and returned.
                              ``obs_type="pixels"`` gives the image itself (a ``Box``, as
                              gymnasium's image wrappers expect); ``["pixels"]`` the dict
action                        normalized to [-1, 1]; a wrong shape, anything but real numbers
                              (complex, text, booleans, None, ragged lists) or a non-finite
                              action raises ``ValueError``; finite values outside the box are
                              clipped (with one warning per env)
``reset(seed, options)``      options ``state``, ``goal_state`` (else sampled from the seed),
                              ``variation`` (merged over the constructor's); any other key
                              raises ``ValueError``
reset and step ``info``       the same keys at reset and at every step, as gymnasium expects
                              and Minari's ``DataCollector(record_infos=True)`` needs: ``goal``
                              (pixels of the goal state, drawn at reset), ``goal_state``
                              (float64, exact), ``success``
                              by the env's ``success_rule`` (a start that already satisfies its
                              goal shows ``True`` at reset), plus env extras
termination                   on success, unless ``terminate_on_success=False``
``get_state``/``set_state``   exact round trip; the future after ``set_state(s)`` depends on
                              ``s`` alone, as after ``reset(options={"state": s})``
determinism                   same seed and actions give identical observation bytes, in any
                              process
``variation``                 named visual and physical factors (``VARIATIONS``) or a preset
                              name (``PRESETS``); the defaults give the standard env. Each
                              factor declares its valid values (``Factor.valid``); anything
                              else raises ``ValueError`` when the variation is given
arguments                     ``resolution`` 8-4096 px a side, ``obs_type``, ``seed`` (an
                              integer >= 0) and perturbation arguments are checked the same
                              way: bad input raises ``ValueError`` naming the env, the
                              argument, the value and what is valid, in one line
``perturb(kind, **kw)``       ``"teleport"`` and ``"recolor"`` for violation-of-expectation
                              tests; returns ``(obs, info)`` with what changed in ``info``
``dt``, ``render_fps``        ``dt``: the seconds of simulated time one step spans (None where
                              a step has no duration); ``metadata["render_fps"]`` is ``1 / dt``
copies                        ``copy.deepcopy(env)`` and ``pickle`` give an env whose future
                              (observations and rewards under the same actions) is the
                              original's, bit for bit
============================  =================================================================
"""

from __future__ import annotations

import inspect
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Sequence

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from PIL import ImageColor

OBS_KEYS = ("pixels", "state", "proprio")


MIN_RESOLUTION = 8
# A 4096 x 4096 frame is 48 MiB, drawn at every step and for every goal: larger sizes only ask for
# memory (and MuJoCo offscreen buffers) no world model uses.
MAX_RESOLUTION = 4096


def shown(value: Any) -> str:
    """``repr(value)`` on one line, cut short enough for an error message."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 80 else text[:77] + "..."


def is_real(value: Any) -> bool:
    """A real number (Python's or numpy's int or float), not a bool, a complex or a numeric string."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def checked(valid: Callable[[Any], Any], what: str, value: Any) -> Any:
    """``valid(value)``, or a one-line ``ValueError`` naming ``what``, the value and what is valid."""
    try:
        return valid(value)
    except ValueError as problem:
        raise ValueError(f"{what}={shown(value)} {problem}; give {valid}") from None


# Validators: called with a value, they return it normalized or raise ValueError saying what is
# wrong with it ("is out of range"); str() says what is valid, for error messages and the cards.
@dataclass(frozen=True)
class Number:
    """A real number in [low, high]; with ``integer``, an integer there."""

    low: float
    high: float
    integer: bool = False

    def __str__(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.high == math.inf:
            return f"{kind} >= {self.low:g}"
        return f"{kind} from {self.low:g} to {self.high:g}" if self.integer else f"{kind} in [{self.low:g}, {self.high:g}]"

    def __call__(self, value: Any) -> float | int:
        if not is_real(value) or (self.integer and not isinstance(value, numbers.Integral)):
            raise ValueError("is not an integer" if self.integer else "is not a real number")
        if value != value or value in (math.inf, -math.inf):
            raise ValueError("is not finite")
        if not self.low <= value <= self.high:
            raise ValueError("is out of range")
        return int(value) if self.integer else float(value)


@dataclass(frozen=True)
class Point:
    """Real coordinates ``names``, each within its bounds ``low[i]``-``high[i]``."""

    names: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]

    def __str__(self) -> str:
        return f"({', '.join(self.names)}) in {' x '.join(f'[{lo:g}, {hi:g}]' for lo, hi in zip(self.low, self.high))}"

    def __call__(self, value: Any) -> tuple[float, ...]:
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if not isinstance(value, (list, tuple)) or len(value) != len(self.names):
            raise ValueError(f"is not {len(self.names)} numbers")
        return tuple(Number(lo, hi)(v) for v, lo, hi in zip(value, self.low, self.high))


@dataclass(frozen=True)
class Flag:
    """True or False (no 0/1, no strings)."""

    def __str__(self) -> str:
        return "True or False"

    def __call__(self, value: Any) -> bool:
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError("is not a boolean")
        return bool(value)


@dataclass(frozen=True)
class OneOf:
    """One of a few names."""

    choices: tuple[str, ...]

    def __str__(self) -> str:
        return f"one of {', '.join(self.choices)}"

    def __call__(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.choices:
            raise ValueError("is not one of them")
        return value


@dataclass(frozen=True)
class OrNone:
    """``None`` (meaning ``none_means``) or a value ``valid`` accepts."""

    valid: Callable[[Any], Any]
    none_means: str

    def __str__(self) -> str:
        return f"{self.valid}, or None ({self.none_means})"

    def __call__(self, value: Any) -> Any:
        return None if value is None else self.valid(value)


@dataclass(frozen=True)
class Color:
    """An RGB color, returned as 3 integers 0-255.

    Given as a CSS name (``"RoyalBlue"``) or ``"#rrggbb"``, as 3 integers 0-255, or as 3 floats
    0-1 (fractions of full intensity: 0.9 is 230). A triple with any float in it is read as
    fractions, so ``(255.0, 0, 0)`` is refused rather than guessed.
    """

    def __str__(self) -> str:
        return "a CSS color name or '#rrggbb', 3 integers 0-255, or 3 floats 0-1"

    def __call__(self, value: Any) -> tuple[int, int, int]:
        if isinstance(value, str):
            try:
                rgb = ImageColor.getrgb(value)[:3]
            except ValueError:
                raise ValueError("is not a color name") from None
            if not all(0 <= c <= 255 for c in rgb):  # PIL reads "rgb(300, 0, 0)" as is
                raise ValueError("is out of range")
            return rgb
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if not isinstance(value, (list, tuple)) or len(value) != 3 or not all(is_real(c) for c in value):
            raise ValueError("is not a color")
        if all(isinstance(c, numbers.Integral) for c in value):
            if not all(0 <= c <= 255 for c in value):
                raise ValueError("is out of range (integers are 0-255)")
            return tuple(int(c) for c in value)
        if not all(0 <= c <= 1 for c in value):  # NaN fails this too
            raise ValueError("is out of range (floats are fractions 0-1)")
        return tuple(int(round(float(c) * 255)) for c in value)


@dataclass(frozen=True)
class Factor:
    """One variation factor: its default (the standard env), what it means, and its valid values."""

    default: Any
    doc: str
    valid: Callable[[Any], Any]  # a validator (above): value -> normalized value; str() says what is valid

    def check(self, env_name: str, name: str, value: Any) -> Any:
        return checked(self.valid, f"{env_name}: variation {name}", value)


def as_real_array(value: Any) -> np.ndarray | None:
    """``value`` as a float64 array, or None if it is not real numbers (complex, text, booleans,
    None, objects, ragged lists): numpy would drop an imaginary part or parse text silently."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError, RuntimeError):
        return None
    return array.astype(np.float64) if array.dtype.kind in "iuf" else None


def parse_resolution(resolution: int | Sequence[int]) -> tuple[int, int]:
    """``224`` or ``(height, width)`` -> ``(height, width)``, each from 8 to 4096."""
    pair = isinstance(resolution, (tuple, list)) or (isinstance(resolution, np.ndarray) and resolution.ndim == 1)
    size = tuple(resolution) if pair else (resolution, resolution)
    side = Number(MIN_RESOLUTION, MAX_RESOLUTION, integer=True)
    if len(size) != 2:
        raise ValueError(f"resolution={shown(resolution)} is not one size or a (height, width) pair; give {side} (square) or a pair of them")
    try:
        return side(size[0]), side(size[1])
    except ValueError as problem:
        raise ValueError(f"resolution={shown(resolution)} {problem}; give {side} (square) or a (height, width) pair of them") from None


class WorldModelEnv(gym.Env):
    """Base class of every wmbench environment; see the module docstring for the contract."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 10}
    dt: float | None = None  # seconds of simulated time per step (gymnasium's MuJoCo envs' name); render_fps = 1 / dt

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
        if not (render_mode is None or render_mode == "rgb_array"):
            raise ValueError(f"{self.env_name}: render_mode={shown(render_mode)}: wmbench envs render 'rgb_array' only (they are headless)")
        self.render_mode = render_mode
        try:
            self.height, self.width = parse_resolution(resolution)
        except ValueError as error:
            raise ValueError(f"{self.env_name}: {error}") from None
        self.obs_keys = self._parse_obs_type(obs_type)
        self._image_only = isinstance(obs_type, str) and obs_type == "pixels"
        self.terminate_on_success = self._argument("terminate_on_success", Flag(), terminate_on_success)
        self._base_variation = self.resolve_variation(variation)
        self.variation = dict(self._base_variation)

        low, high = np.array(self.state_low, np.float32), np.array(self.state_high, np.float32)
        self._proprio_index = [self.state_names.index(name) for name in self.proprio_names]
        boxes = {
            "pixels": spaces.Box(0, 255, (self.height, self.width, 3), np.uint8),
            "state": spaces.Box(low, high, dtype=np.float32),
            "proprio": spaces.Box(low[self._proprio_index], high[self._proprio_index], dtype=np.float32),
        }
        self.observation_space = boxes["pixels"] if self._image_only else spaces.Dict({key: boxes[key] for key in self.obs_keys})
        self.action_space = spaces.Box(-1.0, 1.0, (len(self.action_names),), np.float32)
        self._goal_state: np.ndarray | None = None
        self._goal_frame: np.ndarray | None = None
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

    @classmethod
    def _check_together(cls, variation: dict[str, Any]) -> None:
        """Refuse, with ``ValueError``, factor values valid one by one but not together."""

    # ------------------------------------------------------------------ the contract
    def success_rule(self, state, goal_state) -> bool:
        """Whether ``state`` satisfies ``goal_state`` by this env's documented rule."""
        return self._evaluate(self._check_state(state, "state"), self._check_state(goal_state, "goal_state"))[0]

    @classmethod
    def resolve_variation(cls, variation: str | dict[str, Any] | None, base: dict[str, Any] | None = None) -> dict:
        """Validate ``variation`` (a dict of factors or a preset name) over ``base`` (default: the standard env)."""
        if isinstance(variation, str):
            if variation not in cls.PRESETS:
                raise ValueError(f"{cls.env_name}: unknown variation preset {shown(variation)}; presets: {sorted(cls.PRESETS)}")
            variation = cls.PRESETS[variation]
        if variation is not None and not isinstance(variation, dict):
            raise ValueError(
                f"{cls.env_name}: variation={shown(variation)} is neither a dict of factors nor a preset name; presets: {sorted(cls.PRESETS)}"
            )
        resolved = dict(base) if base is not None else {k: f.check(cls.env_name, k, f.default) for k, f in cls.VARIATIONS.items()}
        for name, value in (variation or {}).items():
            if name not in cls.VARIATIONS:
                raise ValueError(f"{cls.env_name}: unknown variation factor {shown(name)}; factors: {sorted(cls.VARIATIONS)}")
            resolved[name] = cls.VARIATIONS[name].check(cls.env_name, name, value)
        cls._check_together(resolved)
        return resolved

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is not None:
            seed = self._argument("seed", Number(0, math.inf, integer=True), seed)
        if options is not None and not isinstance(options, dict):
            raise ValueError(f"{self.env_name}: reset options={shown(options)} is not a dict; give a dict with 'state', 'goal_state' or 'variation'")
        options = dict(options or {})
        unknown = set(options) - {"state", "goal_state", "variation"}
        if unknown:
            raise ValueError(
                f"{self.env_name}: unknown reset option(s) {shown(sorted(map(str, unknown)))}; it takes 'state', 'goal_state' and 'variation'"
            )
        super().reset(seed=seed)
        self.variation = self.resolve_variation(options.get("variation"), base=self._base_variation)
        self._apply_variation()

        start = options.get("state")
        start = self._sample_state(self.np_random) if start is None else self._check_state(start, "options['state']")
        goal = options.get("goal_state")
        goal = self._sample_goal_state(self.np_random, start) if goal is None else self._check_state(goal, "options['goal_state']")
        self._goal_state = goal
        self._load_state(start)
        self._goal_frame = self._draw(goal).copy()  # a renderer may draw the next frame into the array it returned

        state = self.get_state()
        success, _, diagnostics = self._evaluate(state, goal)
        return self._observation(state), self._info(success, diagnostics)

    def step(self, action):
        if self._goal_state is None:
            raise gym.error.ResetNeeded(f"{self.env_name}: call reset() before step()")
        self._simulate(self._check_action(action))
        state = self.get_state()
        success, reward, diagnostics = self._evaluate(state, self._goal_state)
        terminated = success and self.terminate_on_success
        return self._observation(state), reward, terminated, False, self._info(success, diagnostics)

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
        if not isinstance(kind, str) or kind not in self.PERTURBATIONS:
            raise ValueError(f"{self.env_name}: unknown perturbation {shown(kind)}; supported: {list(self.PERTURBATIONS)}")
        apply = getattr(self, f"_perturb_{kind}")
        accepted = list(inspect.signature(apply).parameters)
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown:
            raise ValueError(f"{self.env_name}: perturb({kind!r}) got unknown argument(s) {unknown}; it takes {accepted}")
        details = apply(**kwargs)
        return self._observation(self.get_state()), {"perturbation": {"kind": kind, **details}}

    def _perturb_recolor(self, target: str | None = None, color=None) -> dict[str, Any]:
        """Repaint ``target`` (default: the first of ``RECOLOR_TARGETS``) in ``color``, or a random one."""
        target = next(iter(self.RECOLOR_TARGETS)) if target is None else target
        if not isinstance(target, str) or target not in self.RECOLOR_TARGETS:
            raise ValueError(f"{self.env_name}: recolor target={shown(target)} is unknown; it recolors {list(self.RECOLOR_TARGETS)}")
        key = self.RECOLOR_TARGETS[target]
        before = self.variation[key]
        if color is None:
            color = tuple(int(c) for c in self.np_random.integers(0, 256, size=3))
        self.variation = {**self.variation, key: self._argument("recolor color", self.VARIATIONS[key].valid, color)}
        self._apply_variation()
        return {"target": target, "before": before, "after": self.variation[key]}

    # ------------------------------------------------------------------ helpers
    def _info(self, success: bool, diagnostics: dict[str, Any]) -> dict[str, Any]:
        """The info of reset and of every step, with the same keys at both (a subclass adds its extras here)."""
        return {
            "goal": self._goal_frame.copy(),  # new arrays at every call: a user may keep and change what they were given
            "goal_state": self._goal_state.copy(),  # float64: resetting to it reproduces the goal image exactly
            "success": success,
            **diagnostics,
        }

    def _observation(self, state: np.ndarray) -> dict[str, np.ndarray] | np.ndarray:
        if self._image_only:
            return self._draw(state)
        obs = {}
        if "pixels" in self.obs_keys:
            obs["pixels"] = self._draw(state)
        if "state" in self.obs_keys:
            obs["state"] = state.astype(np.float32)
        if "proprio" in self.obs_keys:
            obs["proprio"] = state[self._proprio_index].astype(np.float32)
        return obs

    def _argument(self, what: str, valid: Callable[[Any], Any], value: Any) -> Any:
        """``value`` checked by the validator ``valid``; the error names this env and ``what``."""
        return checked(valid, f"{self.env_name}: {what}", value)

    def _check_action(self, action) -> np.ndarray:
        expected = f"give {self.action_space.shape[0]} real numbers ({', '.join(self.action_names)}), each in [-1, 1]"
        a = as_real_array(action)
        if a is None:
            raise ValueError(f"{self.env_name}: the action must be numeric (real numbers), got {shown(action)}; {expected}")
        if a.shape != self.action_space.shape:
            raise ValueError(f"{self.env_name}: the action must have shape {self.action_space.shape}, got shape {a.shape}; {expected}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{self.env_name}: the action must be finite, got {shown(a.tolist())}; {expected}")
        if np.any(np.abs(a) > 1.0):
            if not self._warned_clip:
                gym.logger.warn(f"{self.env_name}: actions are normalized to [-1, 1]; clipping {a.tolist()} (warned once)")
                self._warned_clip = True
            a = np.clip(a, -1.0, 1.0)
        return a

    def _check_state(self, state, what: str) -> np.ndarray:
        """``state`` as a float64 copy, or ``ValueError``; ``what`` names it in the message."""
        names = ", ".join(self.state_names) if len(self.state_names) <= 8 else f"{self.state_names[0]}, ..., {self.state_names[-1]}"
        expected = f"give {len(self.state_names)} real numbers [{names}] as get_state() returns them"
        s = as_real_array(state)
        if s is None:
            raise ValueError(f"{self.env_name}: {what} must be numeric (real numbers), got {shown(state)}; {expected}")
        if s.shape != (len(self.state_names),):
            raise ValueError(f"{self.env_name}: {what} must have shape ({len(self.state_names)},), got shape {s.shape}; {expected}")
        if not np.all(np.isfinite(s)):
            raise ValueError(f"{self.env_name}: {what} must be finite, got {shown(s.tolist())}; {expected}")
        return s

    def _parse_obs_type(self, obs_type: str | Sequence[str]) -> tuple[str, ...]:
        keys = (obs_type,) if isinstance(obs_type, str) else tuple(obs_type) if isinstance(obs_type, (list, tuple, set, frozenset)) else ()
        if keys == ("all",):
            keys = OBS_KEYS
        if not keys or any(not isinstance(k, str) or k not in OBS_KEYS for k in keys):
            raise ValueError(f"{self.env_name}: obs_type={shown(obs_type)} is not valid; choose any of {OBS_KEYS} (or 'all')")
        return tuple(k for k in OBS_KEYS if k in keys)
