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
