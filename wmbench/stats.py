"""The statistics every evaluation reports with: intervals, the bootstrap, tests, AUROC and linear probes.

==============================  =======================================================================
``wilson_interval``             95% interval of a success rate, sound at 0%, 100% and small n
``mean_band``                   mean +- 1.96 standard errors over rows (normal approximation of the 95%
                                interval of a mean)
``bootstrap_interval``          percentile bootstrap of any statistic of a list, resampled with
                                replacement from a seeded generator
``paired_t_test``               two-sided paired t-test (scipy's, or the Student t tail computed here)
``mcnemar_exact``               exact two-sided McNemar test of paired successes: a binomial test on
                                the discordant pairs
``paired_difference_interval``  paired bootstrap interval of a difference in success rate
``paired_effect_size``          Cohen's d_z: the mean paired difference in units of its standard
                                deviation
``auroc``                       P(positive score > negative score), ties counting half: Mann-Whitney U
``fit_ridge``                   ridge regression on standardized features (closed form)
``fit_logistic``                L2-regularized logistic regression on standardized features (L-BFGS)
==============================  =======================================================================
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Z95 = 1.959964  # two-sided 95% normal quantile


# ---------------------------------------------------------------------- intervals
def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of a success rate: sound at 0%, 100% and small n."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    center = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, center - half), min(1.0, center + half)


def mean_band(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over axis 0 and its 95% band, mean +- 1.96 standard errors (needs at least 2 rows)."""
    mean = values.mean(0)
    half = Z95 * values.std(0, ddof=1) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def bootstrap_interval(items: Sequence, statistic: Callable[[list], float], samples: int = 2000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over ``items`` resampled with replacement."""
    rng = np.random.default_rng(seed)
    items = list(items)
    draws = [statistic([items[i] for i in rng.integers(0, len(items), len(items))]) for _ in range(samples)]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(low), float(high)


# ---------------------------------------------------------------------- tests
def paired_t_test(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sided paired t-test of ``a`` vs ``b``: (t statistic, p-value).

    When every difference is the same the test is degenerate: no difference gives (0, 1), a
    constant nonzero one (+-inf, 0).
    """
    difference = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    if np.ptp(difference) == 0:
        return (0.0, 1.0) if difference[0] == 0 else (math.copysign(math.inf, difference[0]), 0.0)
    try:
        from scipy.stats import ttest_rel
    except ImportError:
        n = len(difference)
        t = float(difference.mean() / (difference.std(ddof=1) / math.sqrt(n)))
        return t, student_t_two_sided_p(t, n - 1)
    result = ttest_rel(a, b)
    return float(result.statistic), float(result.pvalue)


def mcnemar_exact(only_first: int, only_second: int) -> float:
    """Exact two-sided McNemar p-value from the discordant pairs: ``only_first`` pairs the first run
    solved and the second did not, ``only_second`` the reverse.

    Under the null both are equally likely, so ``only_first ~ Binomial(n, 1/2)`` with ``n`` their
    sum; p = min(1, 2 P(X <= min(only_first, only_second))), and 1 when no pair is discordant.
    """
    discordant = only_first + only_second
    smaller = min(only_first, only_second)
    tail = sum(math.comb(discordant, k) for k in range(smaller + 1))
    return min(1.0, 2 * tail / 2**discordant)


def paired_difference_interval(first: Sequence[bool], second: Sequence[bool], samples: int = 10_000, seed: int = 0,
                               level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of rate(first) - rate(second) over paired outcomes: the pairs are
    resampled with replacement, each keeping both of its outcomes."""
    if len(first) != len(second):
        raise ValueError(f"paired outcomes need equal lengths; got {len(first)} and {len(second)}")
    differences = np.asarray(first, np.float64) - np.asarray(second, np.float64)
    return bootstrap_interval(differences, lambda drawn: float(np.mean(drawn)), samples=samples, seed=seed, level=level)


def paired_effect_size(a: np.ndarray, b: np.ndarray) -> float | None:
    """Cohen's d_z of ``a`` vs ``b``: mean(a - b) / sd(a - b) (ddof 1).

    0 when every difference is 0; None when every difference is the same nonzero number (infinite).
    """
    difference = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    if np.ptp(difference) == 0:
        return 0.0 if difference[0] == 0 else None
    return float(difference.mean() / difference.std(ddof=1))


def t_test_method() -> str:
    """How ``paired_t_test`` computes its p-value here, for the results' definitions."""
    if importlib.util.find_spec("scipy") is None:
        return "Student t tail from wmbench's regularized incomplete beta (scipy not installed)"
    return "scipy.stats.ttest_rel"


def student_t_two_sided_p(t: float, df: int) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom: I_x(df/2, 1/2), x = df / (df + t^2)."""
    return incomplete_beta(df / 2, 0.5, df / (df + t * t))


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), by its continued fraction (modified Lentz).

    The fraction converges fast for x < (a + 1) / (a + b + 2); above, I_x(a, b) = 1 - I_(1-x)(b, a).
    """
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1) / (a + b + 2):
        return 1.0 - incomplete_beta(b, a, 1.0 - x)
    tiny = 1e-300
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)) / a
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    fraction = d
    for m in range(1, 500):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),  # even term
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):  # odd term
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            fraction *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return front * fraction


# ---------------------------------------------------------------------- AUROC
def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve of ``positive`` vs ``negative`` scores: P(pos > neg) + P(pos == neg) / 2.

    Computed as the Mann-Whitney U of the positives, with tied scores given their mean rank.
    """
    positive, negative = np.asarray(positive, np.float64), np.asarray(negative, np.float64)
    ranks = midranks(np.concatenate([positive, negative]))
    u = ranks[: len(positive)].sum() - len(positive) * (len(positive) + 1) / 2
    return float(u / (len(positive) * len(negative)))


def binary_auroc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """AUROC of ``scores`` for the 0/1 ``labels``; None unless both classes are present."""
    positive = labels > 0.5
    return auroc(scores[positive], scores[~positive]) if 0 < positive.sum() < len(labels) else None


def midranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values``; tied values share the mean of the ranks they span."""
    order = np.argsort(values, kind="stable")
    _, first, counts = np.unique(values[order], return_index=True, return_counts=True)
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)
    return ranks


# ---------------------------------------------------------------------- linear probes
def fit_ridge(features: np.ndarray, targets: np.ndarray, ridge: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Weights and bias of ridge regression ``targets ~ features @ W + b`` (features standardized inside).

    ``ridge`` is relative to the mean feature variance, which keeps the normal equations well conditioned.
    """
    mean, scale = features.mean(0), features.std(0) + 1e-8
    x = (features - mean) / scale
    gram = x.T @ x + ridge * len(x) * np.eye(x.shape[1])
    weights = np.linalg.solve(gram, x.T @ (targets - targets.mean(0))) / scale[:, None]
    return weights, targets.mean(0) - mean @ weights


def fit_logistic(features: np.ndarray, labels: np.ndarray, l2: float = 1e-3) -> dict[str, Any]:
    """L2-regularized logistic regression on standardized features (L-BFGS, float64), with its training figures."""
    import torch

    features = np.asarray(features, np.float64)
    mean, std = features.mean(0), features.std(0) + 1e-6
    x = torch.from_numpy((features - mean) / std)
    y = torch.from_numpy(labels)
    weight = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=500, line_search_fn="strong_wolfe")

    def loss():
        optimizer.zero_grad()
        value = torch.nn.functional.binary_cross_entropy_with_logits(x @ weight + bias, y) + l2 * weight.pow(2).sum()
        value.backward()
        return value

    optimizer.step(loss)
    probe = {"mean": mean, "std": std, "weight": weight.detach().numpy(), "bias": float(bias.detach())}
    scores = logistic_scores(probe, features)
    return {**probe, "samples": len(labels), "positives": int(labels.sum()),
            "train_accuracy": float(((scores > 0.5) == (labels > 0.5)).mean()),
            "train_auroc": binary_auroc(scores, labels)}


def logistic_scores(probe: dict[str, Any], features: np.ndarray) -> np.ndarray:
    """The probability of the positive class under a probe from ``fit_logistic``."""
    logits = ((features - probe["mean"]) / probe["std"]) @ probe["weight"] + probe["bias"]
    return 1.0 / (1.0 + np.exp(-logits))
