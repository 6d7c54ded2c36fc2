"""Ray, for work beyond one machine: collection, the oracle's rollouts and evaluation sweeps as Ray tasks.

Ray is an optional extra (``pip install 'wmbench[ray]'``) and is imported only by a command given
``--ray``. ``--ray`` alone starts a Ray instance on this machine; ``--ray auto`` joins the cluster
that ``ray start`` made here; ``--ray HOST:PORT`` (or ``ray://HOST:10001``) joins one elsewhere.

Tasks are pure functions of their arguments and send their results back to the driver, which does
all the writing: no shared filesystem is needed for outputs, and a task that Ray runs again after
its worker died cannot write anything twice. A task whose worker dies is retried ``RETRIES`` times.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator, Sequence
from typing import Any

RETRIES = 3  # runs of a task after its worker dies (a killed process, a lost node)
CONNECT_TIMEOUT = 5.0  # seconds to wait for a cluster's address to answer
MISSING = "--ray needs Ray, an optional extra: pip install 'wmbench[ray]'"


class ClusterError(RuntimeError):
    """A task was lost on every try (its worker or node died, or was killed for memory)."""


def ray_module():
    """The ``ray`` package, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ImportError(MISSING) from None
    return ray


def connect(address: str | None) -> None:
    """Join the Ray cluster at ``address`` (``auto``: the one ``ray start`` made here), or start a new one on this machine (None)."""
    ray = ray_module()
    if address not in (None, "auto", "local"):
        check_reachable(address)
    if ray.is_initialized():
        return
    try:
        # the workers' logs stay in Ray's session folder: the driver's terminal keeps its progress bar
        ray.init(address=address or "local", include_dashboard=False, log_to_driver=False, configure_logging=False)
    except ConnectionError as error:
        raise ValueError(f"--ray {address}: no Ray cluster answers there ({str(error).splitlines()[0]}); "
                         "start one with `ray start --head`, or give its address (HOST:PORT)") from None


def check_reachable(address: str) -> None:
    """Refuse at once an address where nothing listens: Ray itself would keep trying for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--ray {address}: give the cluster's HOST:PORT (e.g. 10.0.0.5:6379, or ray://HOST:10001), or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as error:
        raise ValueError(f"--ray {address}: nothing answers there ({error.strerror or error}); start the cluster with "
                         "`ray start --head`, or check the address") from None


def cluster_cpus() -> int:
    """The CPUs of the connected cluster, every node together."""
    return max(1, int(ray_module().cluster_resources().get("CPU", 1)))


def run_tasks(function: Callable, arguments: Sequence[tuple], *, gpus: Sequence[float] | None = None,
              keep_going: bool = False) -> Iterator[tuple[int, Any]]:
    """``function(*arguments[i])`` for every ``i`` as Ray tasks; yields ``(i, result)`` as each finishes.

    ``gpus[i]``: the GPUs task ``i`` asks for (default none). A task that raises makes ``ray.get``
    raise the same exception type (with Ray's traceback of the task attached); a task lost on every
    try raises ``ClusterError``, or, with ``keep_going``, is yielded as ``(i, ClusterError)``.
    """
    ray = ray_module()
    task = ray.remote(function)
    pending = {task.options(max_retries=RETRIES, num_gpus=gpus[i] if gpus else 0).remote(*args): i for i, args in enumerate(arguments)}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                index = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayTaskError:
                    raise  # the task's own error, raised as its own type
                except ray.exceptions.RayError as error:
                    lost = ClusterError(f"a Ray task was lost {RETRIES + 1} times ({type(error).__name__}: "
                                        f"{str(error).strip().splitlines()[0]})")
                    if not keep_going:
                        raise lost from None
                    result = lost
                yield index, result
    finally:
        for ref in pending:  # the caller stopped early (an error, Ctrl-C): the cluster's cores are not left busy
            ray.cancel(ref, force=True)


def run_ordered(function: Callable, arguments: Sequence[tuple]) -> list[Any]:
    """``[function(*args) for args in arguments]``, run as Ray tasks."""
    results: list[Any] = [None] * len(arguments)
    for index, result in run_tasks(function, arguments):
        results[index] = result
    return results
