"""``lr0fm bench --backend ray``: one Ray task per (model, dataset) pass, on a local Ray instance
or a cluster (``--address``). Each task asks for one GPU when the cluster has GPUs; the driver
writes each result into the database as its task finishes; a failing task is retried, then
reported, while the others go on. Ray is optional: it is imported only here.

Every node must see the datasets at the same ``--data-root`` path (shared storage) and have
``lr0fm_core`` installed; the database is written by the driver only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .runner import BenchError, PassResult, SweepConfig, Task, run_task

MAX_RETRIES = 2  # a failed task runs at most 1 + MAX_RETRIES times


def import_ray():
    """The ray module, or a BenchError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise BenchError("--backend ray needs Ray, which is not installed: pip install 'ray>=2.40' "
                         "(or the package's [ray] extra); the default --backend local needs nothing more") from None
    return ray


def run_ray(tasks: Sequence[Task], config: SweepConfig, finished: Callable[[PassResult], None],
            failed: Callable[[Task, str], None], address: str | None = None) -> None:
    """Submit every task, hand each result to ``finished`` as it arrives, and each final failure to ``failed``.

    Uses the Ray instance this process is already connected to, else connects to ``address``
    (or starts a local one) and disconnects at the end.
    """
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        except Exception as exc:  # connection errors to a cluster address come in several types
            raise BenchError(f"cannot start or reach Ray{f' at {address}' if address else ''}: {exc}") from exc
    try:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) > 0 else 0
        remote = ray.remote(run_task).options(num_gpus=gpus, max_retries=MAX_RETRIES, retry_exceptions=True)
        pending = {remote.remote(task, config): task for task in tasks}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            task = pending.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except ray.exceptions.RayError as exc:
                failed(task, _reason(exc))
                continue
            finished(result)
    finally:
        if started:
            ray.shutdown()


def _reason(exc: Exception) -> str:
    cause = getattr(exc, "cause", None) or exc
    first_line = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {first_line} (after {MAX_RETRIES} retries)"
