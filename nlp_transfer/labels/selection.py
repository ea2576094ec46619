"""Which texts of a pool to label next, from their vectors (and a classifier's logits): the strategies of `suggest`.

- `typiclust` (the cold start, no model needed; Hacohen et al. 2022, "Active learning on a budget"): k-means over
  the pool into (labelled + k) clusters; from each of the clusters that the labelled texts cover least (largest
  first), its most *typical* text: the inverse mean distance to its nearest neighbours in its cluster. Typical texts
  of many clusters cover the classes; uncertainty is worthless before a model exists.
- `margin` (breaking ties; Schröder et al. 2022 found it a strong baseline for transformers): the texts whose two
  most likely classes are closest.
- `cluster-margin` (Citovsky et al. 2021, simplified): the 10 x k least certain texts by margin, clustered into k
  groups, the least certain of each group: uncertainty without k copies of one confusing kind of text.
- `random`: the baseline every strategy is measured against.

Every strategy skips a text whose vector is within `duplicate_cosine` of a text already chosen or labelled: a
near-duplicate adds almost nothing that its twin did not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.metrics.suite import probabilities_from_logits
from nlp_transfer.tasks import MULTI_LABEL, REGRESSION

STRATEGIES = ("auto", "typiclust", "cluster-margin", "margin", "random")
MODEL_STRATEGIES = ("cluster-margin", "margin")
DUPLICATE_COSINE = 0.95
"""Texts at least this similar (cosine of their vectors) count as near-duplicates: one of them is enough."""
CANDIDATES_PER_PICK = 10
"""cluster-margin clusters the CANDIDATES_PER_PICK x k least certain texts."""
TYPICALITY_NEIGHBOURS = 20
MIN_CLUSTER_SIZE = 5
"""TypiClust passes over clusters smaller than this while larger uncovered ones remain (outliers, not modes)."""
KMEANS_FULL_BATCH_ROWS = 20_000
"""Above this many rows k-means runs in mini-batches (same clusters in spirit, minutes instead of hours)."""


@dataclass(frozen=True)
class Pick:
    """One chosen text: its index in the pool, the strategy's score and why it was chosen."""

    index: int
    score: float
    reason: str


def resolve_strategy(strategy: str, has_model: bool) -> str:
    """`auto` -> cluster-margin with a model, typiclust without; a model strategy without a model is refused."""
    if strategy not in STRATEGIES:
        raise UserInputError(f"--strategy {strategy!r} is not one of: {', '.join(STRATEGIES)}.")
    if strategy == "auto":
        return "cluster-margin" if has_model else "typiclust"
    if strategy in MODEL_STRATEGIES and not has_model:
        raise UserInputError(
            f"--strategy {strategy} ranks texts by a classifier's uncertainty: give the current classifier with "
            "--model DIR, or use --strategy typiclust for a cold start without one."
        )
    return strategy


class NearDuplicateFilter:
    """Accepts a text unless its vector is within `threshold` cosine of one already accepted or labelled."""

    def __init__(self, vectors: np.ndarray, labelled: np.ndarray | None, threshold: float) -> None:
        self.vectors, self.threshold = vectors, threshold
        self.labelled = labelled if labelled is not None and len(labelled) else None
        self.accepted: list[int] = []

    def accept(self, index: int) -> bool:
        vector = self.vectors[index]
        if self.accepted and float(np.max(self.vectors[self.accepted] @ vector)) >= self.threshold:
            return False
        if self.labelled is not None and float(np.max(self.labelled @ vector)) >= self.threshold:
            return False
        self.accepted.append(index)
        return True


def margins(logits: np.ndarray, task: str) -> np.ndarray:
    """How certain the classifier is of each text (0 = a tie): single-label, the gap between its two most likely
    classes' probabilities; multi-label, the smallest |2p - 1| over the labels (the label nearest 0.5)."""
    if task == REGRESSION:
        raise UserInputError(
            "Uncertainty strategies need a classifier; this model is a regression model. Use --strategy typiclust "
            "or random."
        )
    probabilities = probabilities_from_logits(logits, task)
    if task == MULTI_LABEL:
        return np.min(np.abs(2.0 * probabilities - 1.0), axis=1)
    top_two = np.sort(probabilities, axis=1)[:, -2:]
    return top_two[:, 1] - top_two[:, 0]


def choose(
    strategy: str,
    k: int,
    vectors: np.ndarray,
    eligible: np.ndarray,
    labelled: np.ndarray | None = None,
    margin: np.ndarray | None = None,
    seed: int = 0,
    duplicate_cosine: float = DUPLICATE_COSINE,
) -> list[Pick]:
    """Up to k picks among the `eligible` indices of `vectors`, best first (fewer when too few texts qualify)."""
    eligible = np.asarray(eligible, dtype=np.int64)
    keep = NearDuplicateFilter(vectors, labelled, duplicate_cosine)
    if strategy == "random":
        order = np.random.default_rng(seed).permutation(eligible)
        return _take(((int(i), 0.0, "drawn at random") for i in order), k, keep)
    if strategy == "typiclust":
        return typiclust(k, vectors, eligible, labelled, seed, keep)
    if margin is None:
        raise UserInputError(f"--strategy {strategy} needs a classifier (--model).")
    by_margin = eligible[np.argsort(margin[eligible], kind="stable")]
    if strategy == "margin":
        return _take(((int(i), float(margin[i]), f"margin {margin[i]:.3f}") for i in by_margin), k, keep)
    return cluster_margin(k, vectors, by_margin, margin, seed, keep)


def _take(candidates: Iterable[tuple[int, float, str]], k: int, keep: NearDuplicateFilter) -> list[Pick]:
    picks: list[Pick] = []
    for index, score, reason in candidates:
        if len(picks) == k:
            break
        if keep.accept(index):
            picks.append(Pick(index, score, reason))
    return picks


def cluster_margin(
    k: int, vectors: np.ndarray, by_margin: np.ndarray, margin: np.ndarray, seed: int, keep: NearDuplicateFilter
) -> list[Pick]:
    """The least certain text of each of k clusters of the CANDIDATES_PER_PICK x k least certain texts; then, if
    duplicates left some clusters empty, the next least certain texts."""
    candidates = by_margin[: CANDIDATES_PER_PICK * k]
    if len(candidates) == 0:
        return []
    groups = kmeans(vectors[candidates], min(k, len(candidates)), seed)
    firsts: dict[int, list[int]] = {}
    for index, group in zip(candidates, groups):  # candidates are in margin order: each list starts least certain
        firsts.setdefault(int(group), []).append(int(index))
    ordered = sorted(firsts.items(), key=lambda item: margin[item[1][0]])
    round_robin = []
    for depth in range(max(len(members) for _, members in ordered)):
        round_robin += [(members[depth], group) for group, members in ordered if depth < len(members)]
    reason = "margin {:.3f}, the least certain of uncertain cluster {}"
    picks = _take(((i, float(margin[i]), reason.format(margin[i], g)) for i, g in round_robin), k, keep)
    rest = ((int(i), float(margin[i]), f"margin {margin[i]:.3f}") for i in by_margin[len(candidates) :])
    return picks + _take(rest, k - len(picks), keep)


def typiclust(
    k: int,
    vectors: np.ndarray,
    eligible: np.ndarray,
    labelled: np.ndarray | None,
    seed: int,
    keep: NearDuplicateFilter,
) -> list[Pick]:
    """The most typical text of each of the clusters the labelled texts cover least, largest clusters first."""
    known = 0 if labelled is None else len(labelled)
    clusters = min(len(eligible), known + k)
    if clusters == 0:
        return []
    model = kmeans(vectors[eligible], clusters, seed, return_model=True)
    groups = model.labels_
    covered = np.bincount(model.predict(labelled), minlength=clusters) if known else np.zeros(clusters, int)
    sizes = np.bincount(groups, minlength=clusters)
    order = sorted(range(clusters), key=lambda c: (sizes[c] < MIN_CLUSTER_SIZE, covered[c], -sizes[c], c))
    ranked: dict[int, list[tuple[int, float]]] = {}
    for cluster in order:
        members = eligible[groups == cluster]
        scores = typicality(vectors[members])
        ranked[cluster] = [(int(members[i]), float(scores[i])) for i in np.argsort(-scores, kind="stable")]
    candidates = []
    for depth in range(max(len(ranked[c]) for c in order)):
        for cluster in order:
            if depth < len(ranked[cluster]):
                index, score = ranked[cluster][depth]
                reason = f"typical of cluster {cluster} ({sizes[cluster]} texts, {covered[cluster]} labelled)"
                candidates.append((index, score, reason))
    return _take(candidates, k, keep)


def typicality(members: np.ndarray) -> np.ndarray:
    """1 / mean Euclidean distance to the TYPICALITY_NEIGHBOURS nearest other members (one member: 1.0)."""
    if len(members) < 2:
        return np.ones(len(members))
    from sklearn.neighbors import NearestNeighbors

    neighbours = min(TYPICALITY_NEIGHBOURS, len(members) - 1)
    distances, _ = NearestNeighbors(n_neighbors=neighbours + 1).fit(members).kneighbors(members)
    return 1.0 / (distances[:, 1:].mean(axis=1) + 1e-8)


def kmeans(vectors: np.ndarray, clusters: int, seed: int, return_model: bool = False):
    """k-means cluster of each row (or the fitted model); mini-batch above KMEANS_FULL_BATCH_ROWS rows."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if len(vectors) > KMEANS_FULL_BATCH_ROWS:
        model = MiniBatchKMeans(n_clusters=clusters, random_state=seed, n_init=3, batch_size=4096)
    else:
        model = KMeans(n_clusters=clusters, random_state=seed, n_init=3)
    model.fit(vectors)
    return model if return_model else model.labels_
