"""One progress convention for long loops: the caller passes how to show progress, the library just iterates.

progress=None / False   no bar
progress=True / "tqdm"  a tqdm bar on stderr (hidden automatically when stderr is not a terminal)
progress=callable       ``progress(items)`` must return an iterable over ``items``, e.g.
                        ``functools.partial(mo.status.progress_bar, title="Calibrating")`` in a marimo lab
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

Progress = bool | str | Callable[[Sequence], Iterable] | None


def track(items: Sequence, progress: Progress, desc: str = "") -> Iterable:
    """Iterate over ``items`` (a sized sequence) while showing progress as ``progress`` asks."""
    if progress is None or progress is False:
        return items
    if progress is True or progress == "tqdm":
        from tqdm.auto import tqdm

        return tqdm(items, desc=desc, disable=None, leave=False)
    if callable(progress):
        return progress(items)
    raise TypeError(f"progress must be None, a bool, 'tqdm' or a callable, got {progress!r}")


class StepClock:
    """Elapsed time and an ETA for a run of ``total`` steps of unequal cost: after step k of n,

        eta = elapsed / k · (n − k)        (the mean pace so far, the only honest guess before a step runs)

    ``tick(desc)`` closes the current step and returns the line a progress bar shows under its title."""

    def __init__(self, total: int, clock: Callable[[], float] | None = None):
        if isinstance(total, bool) or not isinstance(total, int) or total < 1:
            raise ValueError(f"total must be a positive int, got {total!r}")
        import time

        self.total, self.done = total, 0
        self.clock = clock or time.monotonic
        self.start = self.last = self.clock()

    def tick(self, desc: str = "") -> str:
        now = self.clock()
        step_s, elapsed = now - self.last, now - self.start
        self.done, self.last = min(self.done + 1, self.total), now
        left = elapsed / self.done * (self.total - self.done)
        head = f"{desc} ({step_s:.1f} s) · " if desc else ""
        return f"{head}{self.done}/{self.total} · {elapsed:.0f} s elapsed · about {left:.0f} s left"
