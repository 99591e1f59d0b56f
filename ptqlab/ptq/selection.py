"""Which samples to calibrate with: random, class-stratified, or one per k-means cluster (SelectQ-style)."""

from __future__ import annotations

import torch

SELECTION_METHODS = ("random", "stratified", "kmeans")


def select_calibration(
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    n: int = 32,
    method: str = "random",
    *,
    features: torch.Tensor | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """Indices of ``n`` calibration samples from the pool ``x``.

    random       n samples uniformly without replacement;
    stratified   per class, n · (class share) samples (largest remainders get the leftovers);
    kmeans       k-means with k = n on ``features`` (default: x flattened), then the sample nearest each
                 centroid (SelectQ-style: the set covers the feature space instead of its dense middle).
    """
    if not isinstance(x, torch.Tensor) or x.dim() == 0 or x.shape[0] == 0:
        raise ValueError("x must be a non-empty tensor of samples (N, ...)")
    if x.device.type == "meta" or (features is not None and features.device.type == "meta"):
        raise ValueError("x and features must hold data, not be meta tensors (shape only)")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    pool = x.shape[0]
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= pool:
        raise ValueError(f"n must be an int in [1, {pool}] (the pool size), got {n!r}")
    if method not in SELECTION_METHODS:
        raise ValueError(f"method must be one of {SELECTION_METHODS}, got {method!r}")
    generator = torch.Generator().manual_seed(seed)
    if method == "random":
        return torch.randperm(pool, generator=generator)[:n]
    if method == "stratified":
        if y is None:
            raise ValueError("stratified selection needs labels y, one per sample of x")
        return _stratified(class_labels(y, pool, "y"), n, generator)
    feats = (x if features is None else features).detach().flatten(1).to(torch.float64)
    if feats.shape[0] != pool:
        raise ValueError(f"features has {feats.shape[0]} rows but x has {pool}")
    return _kmeans_nearest(feats, n, seed)


def class_labels(y, rows: int, name: str = "y") -> torch.Tensor:
    """Integer class labels of shape (rows,): (rows, 1) is squeezed; one-hot or other 2-D labels are refused."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"{name} must be a tensor of integer class labels, got {type(y).__name__}")
    if y.device.type == "meta":
        raise ValueError(f"{name} is a meta tensor (shape only, no data)")
    if y.dim() == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.dim() != 1:
        raise ValueError(
            f"{name} must hold one class index per sample, shape ({rows},) or ({rows}, 1), got shape "
            f"{tuple(y.shape)} (one-hot labels? pass {name}.argmax(1))"
        )
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer class indices, got dtype {y.dtype}")
    if len(y) != rows:
        raise ValueError(
            f"x and {name} must be aligned: {name} has {len(y)} labels but there are {rows} samples"
        )
    return y


def _stratified(y: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    classes, counts = torch.unique(y, return_counts=True)
    exact = counts.to(torch.float64) * n / len(y)
    quota = exact.floor().long()
    leftovers = torch.argsort(exact - quota, descending=True, stable=True)[: n - int(quota.sum())]
    quota[leftovers] += 1
    chosen = []
    for c, q in zip(classes, quota, strict=True):
        members = torch.nonzero(y == c).flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[: int(q)]])
    return torch.cat(chosen)


def _kmeans_nearest(features: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=n, n_init=3, random_state=seed).fit(features.numpy())
    distances = torch.cdist(torch.from_numpy(km.cluster_centers_), features)  # (n, N)
    taken: list[int] = []
    for row in distances:
        for i in torch.argsort(row).tolist():  # nearest sample not already chosen by another centroid
            if i not in taken:
                taken.append(i)
                break
    return torch.tensor(taken)
