"""Which texts `suggest` chooses, on synthetic vectors (no model): typiclust covers the planted clusters (the
uncovered ones first), margin and cluster-margin take the least certain texts (one per cluster), random is
reproducible, near-duplicates are never both chosen, only eligible rows are chosen, and the refusals.

The pool is 6 Gaussian clusters around orthogonal directions of a 16-D space, normalised to unit length: every
text is far closer to its own direction than to any other, and no two texts are near-duplicates by accident.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from nlp_transfer.errors import UserInputError
from nlp_transfer.labels.selection import (
    DUPLICATE_COSINE,
    NearDuplicateFilter,
    Pick,
    choose,
    margins,
    resolve_strategy,
    typicality,
)
from nlp_transfer.tasks import MULTI_LABEL, REGRESSION, SINGLE_LABEL

DIM = 16
CLUSTERS = 6
PER_CLUSTER = 15
NOISE = 0.15


def unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def planted(clusters: int = CLUSTERS, per_cluster: int = PER_CLUSTER, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(unit vectors, planted cluster of each), cluster c around the c-th axis, members in cluster order."""
    rng = np.random.default_rng(seed)
    centres = np.eye(DIM)[:clusters]
    cluster = np.repeat(np.arange(clusters), per_cluster)
    vectors = centres[cluster] + rng.normal(0.0, NOISE, size=(len(cluster), DIM))
    return unit(vectors), cluster


def near(vector: np.ndarray, seed: int, scale: float = 0.01) -> np.ndarray:
    """A near-duplicate of `vector`: the same direction with a little noise (cosine above 0.99)."""
    return unit((vector + np.random.default_rng(seed).normal(0.0, scale, size=vector.shape))[None, :])[0]


def indices(picks: list[Pick]) -> list[int]:
    return [pick.index for pick in picks]


@pytest.fixture(scope="module")
def pool() -> tuple[np.ndarray, np.ndarray]:
    return planted()


def test_the_planted_pool_is_what_the_tests_assume(pool: tuple[np.ndarray, np.ndarray]) -> None:
    for vectors, cluster in (pool, planted(seed=2)):
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
        to_centres = vectors @ np.eye(DIM)[:CLUSTERS].T
        own = to_centres[np.arange(len(vectors)), cluster]
        to_centres[np.arange(len(vectors)), cluster] = -1.0
        assert own.min() > 0.7 and to_centres.max() < 0.4
        cosines = vectors @ vectors.T
        assert cosines[~np.eye(len(vectors), dtype=bool)].max() < DUPLICATE_COSINE  # no accidental near-duplicates


# ------------------------------------------------------------------------------------------- typiclust


def test_typiclust_cold_start_picks_one_text_of_every_cluster(pool: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, cluster = pool
    picks = choose("typiclust", CLUSTERS, vectors, np.arange(len(vectors)))
    assert len(picks) == CLUSTERS
    assert sorted(cluster[indices(picks)]) == list(range(CLUSTERS))
    for pick in picks:
        assert pick.reason.startswith("typical of cluster ")
        assert f"({PER_CLUSTER} texts, 0 labelled)" in pick.reason
        assert pick.score > 0


def test_typiclust_picks_the_most_typical_member_of_each_cluster(pool: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, cluster = pool
    picks = choose("typiclust", CLUSTERS, vectors, np.arange(len(vectors)))
    for pick in picks:
        members = np.flatnonzero(cluster == cluster[pick.index])
        scores = typicality(vectors[members])
        assert pick.index == members[int(np.argmax(scores))]
        assert pick.score == pytest.approx(float(scores.max()))


def test_typiclust_with_labelled_texts_picks_from_the_uncovered_clusters(pool: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, cluster = pool
    labelled, _ = planted(clusters=3, per_cluster=1, seed=7)  # one labelled text in each of clusters 0, 1, 2
    picks = choose("typiclust", 3, vectors, np.arange(len(vectors)), labelled=labelled)
    assert sorted(cluster[indices(picks)]) == [3, 4, 5]
    assert all(f"({PER_CLUSTER} texts, 0 labelled)" in pick.reason for pick in picks)


def test_typicality_is_the_inverse_mean_distance_to_the_nearest_neighbours() -> None:
    members = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]])
    # 2 neighbours each (all the others): mean distances 2, 1.5, 2.5.
    assert typicality(members) == pytest.approx([1 / 2.0, 1 / 1.5, 1 / 2.5], rel=1e-6)
    assert typicality(members[:1]).tolist() == [1.0]


# ------------------------------------------------------------------------------------- near-duplicates


def with_twins(vectors: np.ndarray) -> tuple[np.ndarray, dict[int, int]]:
    """`vectors` followed by a near-duplicate of every 5th one; {twin index: original index}."""
    originals = list(range(0, len(vectors), 5))
    twins = np.stack([near(vectors[i], seed=i) for i in originals])
    both = np.concatenate([vectors, twins])
    return both, {len(vectors) + n: i for n, i in enumerate(originals)}


@pytest.mark.parametrize("strategy", ["typiclust", "random", "margin", "cluster-margin"])
def test_near_duplicates_are_never_both_picked(pool: tuple[np.ndarray, np.ndarray], strategy: str) -> None:
    vectors, _ = pool
    both, twins = with_twins(vectors)
    assert min(float(both[t] @ both[o]) for t, o in twins.items()) > 0.99
    margin = np.linspace(0.0, 1.0, len(both))
    margin[list(twins)] = 0.0  # the twins are the least certain of all: the margin strategies want them first
    margin[list(twins.values())] = 0.0
    picks = indices(choose(strategy, 40, both, np.arange(len(both)), margin=margin, seed=3))
    assert len(picks) == len(set(picks))
    for twin, original in twins.items():
        assert not (twin in picks and original in picks), (twin, original)
    cosines = both[picks] @ both[picks].T
    assert cosines[~np.eye(len(picks), dtype=bool)].max() < DUPLICATE_COSINE


def test_margin_skips_the_twin_of_a_text_already_picked(pool: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, _ = pool
    both = np.concatenate([vectors, near(vectors[10], seed=1)[None, :]])
    margin = np.full(len(both), 0.9)
    margin[[10, len(vectors), 40]] = [0.01, 0.02, 0.03]  # 10, its twin, then a text of another cluster
    picks = choose("margin", 2, both, np.arange(len(both)), margin=margin)
    assert indices(picks) == [10, 40]


def test_a_near_duplicate_of_a_labelled_text_is_never_picked(pool: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, _ = pool
    labelled = np.stack([near(vectors[i], seed=100 + i) for i in (0, 20, 50)])
    picks = indices(choose("random", len(vectors), vectors, np.arange(len(vectors)), labelled=labelled))
    assert not {0, 20, 50} & set(picks)
    assert len(picks) == len(vectors) - 3


def test_the_near_duplicate_filter_compares_with_its_threshold() -> None:
    vectors = unit(np.array([[1.0, 0.0], [0.96, 0.28], [0.0, 1.0]]))  # cosine(0, 1) = 0.96
    strict = NearDuplicateFilter(vectors, None, threshold=0.95)
    assert [strict.accept(i) for i in range(3)] == [True, False, True]
    loose = NearDuplicateFilter(vectors, None, threshold=0.97)
    assert [loose.accept(i) for i in range(3)] == [True, True, True]
    against_labelled = NearDuplicateFilter(vectors, vectors[:1], threshold=0.95)
    assert [against_labelled.accept(i) for i in range(3)] == [False, False, True]


# --------------------------------------------------------------------------------------------- random


def test_random_is_reproducible_by_seed_and_draws_distinct_eligible_texts(
    pool: tuple[np.ndarray, np.ndarray],
) -> None:
    vectors, _ = pool
    eligible = np.arange(0, len(vectors), 2)
    first = choose("random", 10, vectors, eligible, seed=5)
    assert indices(first) == indices(choose("random", 10, vectors, eligible, seed=5))
    assert indices(first) != indices(choose("random", 10, vectors, eligible, seed=6))
    assert len(first) == 10 and len(set(indices(first))) == 10
    assert set(indices(first)) <= set(eligible.tolist())
    assert all(pick.score == 0.0 and pick.reason == "drawn at random" for pick in first)


# ------------------------------------------------------------------------------------------- eligible


@pytest.mark.parametrize("strategy", ["typiclust", "random", "margin", "cluster-margin"])
def test_picks_come_only_from_the_eligible_texts(pool: tuple[np.ndarray, np.ndarray], strategy: str) -> None:
    vectors, cluster = pool
    eligible = np.flatnonzero(cluster != 2)[::2]  # every other text, none of cluster 2
    margin = np.linspace(0.0, 1.0, len(vectors))[::-1].copy()  # the ineligible last texts are the least certain
    picks = indices(choose(strategy, 5, vectors, eligible, margin=margin))
    assert len(picks) == 5
    assert set(picks) <= set(eligible.tolist())


@pytest.mark.parametrize("strategy", ["typiclust", "random", "margin", "cluster-margin"])
def test_fewer_eligible_texts_than_k_gives_fewer_picks(pool: tuple[np.ndarray, np.ndarray], strategy: str) -> None:
    vectors, _ = pool
    eligible = np.array([3, 33, 63])  # clusters 0, 2 and 4
    margin = np.full(len(vectors), 0.5)
    picks = choose(strategy, 6, vectors, eligible, margin=margin)
    assert sorted(indices(picks)) == [3, 33, 63]


@pytest.mark.parametrize("strategy", ["typiclust", "random", "margin"])
def test_no_eligible_text_gives_no_pick(pool: tuple[np.ndarray, np.ndarray], strategy: str) -> None:
    vectors, _ = pool
    assert choose(strategy, 4, vectors, np.array([], dtype=np.int64), margin=np.zeros(len(vectors))) == []


def test_cluster_margin_with_no_eligible_text_gives_no_pick(pool: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, _ = pool
    assert choose("cluster-margin", 4, vectors, np.array([], dtype=np.int64), margin=np.zeros(len(vectors))) == []


# --------------------------------------------------------------------------------------------- margin


def test_margins_of_a_single_label_classifier_are_the_gap_of_its_two_best_probabilities() -> None:
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 5.0], [1.0, 1.0, 1.0], [-3.0, 4.0, 3.0]])
    expected = []
    for row in logits:
        exps = [math.exp(x) for x in row]
        p = sorted(e / sum(exps) for e in exps)
        expected.append(p[-1] - p[-2])
    got = margins(logits, SINGLE_LABEL)
    assert got == pytest.approx(expected, abs=1e-12)
    assert got[2] == pytest.approx(0.0, abs=1e-12)  # a three-way tie
    # By hand: softmax(2, 1, 0) = (e^2, e, 1) / (e^2 + e + 1); gap (e^2 - e) / (e^2 + e + 1) = 0.4205...
    assert got[0] == pytest.approx((math.e**2 - math.e) / (math.e**2 + math.e + 1))
    assert got[0] == pytest.approx(0.420512, abs=1e-6)


def test_margins_of_a_multi_label_classifier_are_the_label_nearest_one_half() -> None:
    logits = np.array([[0.0, 3.0], [2.0, -1.0], [-5.0, 5.0]])
    sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = [min(abs(2 * sigmoid(x) - 1) for x in row) for row in logits]
    got = margins(logits, MULTI_LABEL)
    assert got == pytest.approx(expected, abs=1e-12)
    assert got[0] == pytest.approx(0.0)  # a label at exactly 0.5
    assert got[1] == pytest.approx(abs(2 * sigmoid(-1.0) - 1))  # |2p - 1| = tanh(1/2) for logit -1
    assert got[1] == pytest.approx(math.tanh(0.5))
    assert got[2] == pytest.approx(math.tanh(2.5))


def test_margins_of_a_regression_model_are_refused() -> None:
    with pytest.raises(UserInputError, match="regression model. Use --strategy typiclust or random"):
        margins(np.zeros((3, 1)), REGRESSION)


def test_margin_picks_the_smallest_margins_first(pool: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, _ = pool
    # Logits of two classes with known margins: softmax(x, 0) gap is tanh(x / 2), so x = 2 artanh(margin).
    wanted = np.random.default_rng(1).permutation(np.linspace(0.01, 0.99, len(vectors)))
    logits = np.stack([2 * np.arctanh(wanted), np.zeros(len(vectors))], axis=1)
    margin = margins(logits, SINGLE_LABEL)
    assert margin == pytest.approx(wanted)
    picks = choose("margin", 7, vectors, np.arange(len(vectors)), margin=margin)
    assert indices(picks) == np.argsort(wanted)[:7].tolist()
    assert [pick.score for pick in picks] == pytest.approx(np.sort(wanted)[:7].tolist())
    assert picks[0].reason == f"margin {np.sort(wanted)[0]:.3f}"


def test_a_margin_strategy_without_margins_is_refused(pool: tuple[np.ndarray, np.ndarray]) -> None:
    vectors, _ = pool
    for strategy in ("margin", "cluster-margin"):
        with pytest.raises(UserInputError, match=f"--strategy {strategy} needs a classifier \\(--model\\)"):
            choose(strategy, 3, vectors, np.arange(len(vectors)))


# ------------------------------------------------------------------------------------- cluster-margin


def test_cluster_margin_picks_the_least_certain_text_of_each_uncertain_cluster() -> None:
    k = 4
    vectors, cluster = planted(clusters=CLUSTERS, per_cluster=PER_CLUSTER, seed=2)
    rng = np.random.default_rng(4)
    margin = np.full(len(vectors), 0.9) + rng.uniform(0, 0.05, len(vectors))
    # The 10 x k least certain texts: 10 in each of clusters 0-3; clusters 4 and 5 are certain.
    uncertain = np.concatenate([np.flatnonzero(cluster == c)[:10] for c in range(k)])
    margin[uncertain] = rng.uniform(0.0, 0.3, len(uncertain))
    picks = choose("cluster-margin", k, vectors, np.arange(len(vectors)), margin=margin, seed=0)
    assert len(picks) == k
    assert sorted(cluster[indices(picks)]) == list(range(k))  # one per cluster of the candidates
    for pick in picks:
        members = uncertain[cluster[uncertain] == cluster[pick.index]]
        assert pick.index == members[np.argmin(margin[members])]  # the least certain of its cluster
        assert pick.score == pytest.approx(margin[pick.index])
        assert pick.reason.startswith(f"margin {margin[pick.index]:.3f}, the least certain of uncertain cluster ")
    assert [pick.score for pick in picks] == sorted(pick.score for pick in picks)
    assert picks[0].index == int(np.argmin(margin))


def test_cluster_margin_goes_on_past_its_candidates_when_they_are_all_near_duplicates(
    pool: tuple[np.ndarray, np.ndarray],
) -> None:
    vectors, _ = pool
    k = 2
    # The 10 x k = 20 least certain texts are near-copies of one text: one of them is enough, and the second pick
    # is the least certain text after the candidates.
    copies = np.stack([near(vectors[0], seed=200 + i, scale=0.005) for i in range(10 * k)])
    both = np.concatenate([copies, vectors[1:]])
    margin = np.concatenate([np.linspace(0.0, 0.19, 10 * k), np.linspace(0.9, 0.2, len(vectors) - 1)])
    picks = choose("cluster-margin", k, both, np.arange(len(both)), margin=margin)
    assert indices(picks) == [0, len(both) - 1]
    assert picks[1].reason == "margin 0.200"
    assert picks[1].score == pytest.approx(0.2)


# ----------------------------------------------------------------------------------------- strategies


def test_auto_is_cluster_margin_with_a_model_and_typiclust_without() -> None:
    assert resolve_strategy("auto", has_model=True) == "cluster-margin"
    assert resolve_strategy("auto", has_model=False) == "typiclust"
    for strategy in ("typiclust", "random"):
        assert resolve_strategy(strategy, has_model=False) == strategy
        assert resolve_strategy(strategy, has_model=True) == strategy
    for strategy in ("margin", "cluster-margin"):
        assert resolve_strategy(strategy, has_model=True) == strategy


@pytest.mark.parametrize("strategy", ["margin", "cluster-margin"])
def test_a_model_strategy_without_a_model_is_refused_naming_model(strategy: str) -> None:
    with pytest.raises(UserInputError) as refused:
        resolve_strategy(strategy, has_model=False)
    message = str(refused.value)
    assert message.startswith(f"--strategy {strategy} ranks texts by a classifier's uncertainty")
    assert "--model DIR" in message and "--strategy typiclust" in message


def test_an_unknown_strategy_is_refused_listing_the_strategies() -> None:
    with pytest.raises(UserInputError) as refused:
        resolve_strategy("entropy", has_model=True)
    assert str(refused.value) == "--strategy 'entropy' is not one of: auto, typiclust, cluster-margin, margin, random."
