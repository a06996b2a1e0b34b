import numpy as np
import pytest

from skmm.metrics import mean_reciprocal_rank, median_rank, recall_at_k, retrieval_ranks


def brute_force_ranks(queries, targets, query_groups, target_groups):
    """Rank of each query's first correct target, by sorting every row (ties
    counted against the query: a wrong target as similar as the correct one
    comes first)."""
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    t = targets / np.linalg.norm(targets, axis=1, keepdims=True)
    ranks = []
    for i, row in enumerate(q @ t.T):
        correct = target_groups == query_groups[i]
        # wrong targets before correct ones among equal similarities
        order = sorted(range(len(row)), key=lambda j: (-row[j], bool(correct[j])))
        ranks.append(next(r for r, j in enumerate(order, start=1) if correct[j]))
    return np.array(ranks)


@pytest.mark.parametrize("grouped", [False, True])
def test_ranks_and_recall_match_a_brute_force_computation(grouped):
    rng = np.random.default_rng(0)
    queries, targets = rng.normal(size=(60, 5)), rng.normal(size=(60, 5))
    targets[:30] = queries[:30] + 0.5 * rng.normal(size=(30, 5))  # some are findable
    if grouped:
        groups = rng.integers(0, 20, size=60)
        kwargs = {"query_groups": groups, "target_groups": groups}
    else:
        groups = np.arange(60)
        kwargs = {}
    expected = brute_force_ranks(queries, targets, groups, groups)
    np.testing.assert_array_equal(retrieval_ranks(queries, targets, **kwargs), expected)
    for k in (1, 5, 10):
        assert recall_at_k(queries, targets, k, **kwargs) == pytest.approx(np.mean(expected <= k))
    np.testing.assert_allclose(recall_at_k(queries, targets, [1, 5], **kwargs),
                               [np.mean(expected <= 1), np.mean(expected <= 5)])
    assert median_rank(queries, targets, **kwargs) == np.median(expected)
    assert mean_reciprocal_rank(queries, targets, **kwargs) == pytest.approx(
        np.mean(1 / expected))


def test_ties_count_against_the_query():
    same = np.ones((4, 3))
    # every target equally similar: the correct one comes last, not first
    np.testing.assert_array_equal(retrieval_ranks(same, same), [4, 4, 4, 4])
    assert recall_at_k(same, same, 1) == 0.0


def test_the_direction_is_given_by_the_argument_order():
    queries = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    targets = np.array([[1.0, 0.1], [0.1, 1.0], [1.0, 0.0]])
    assert list(retrieval_ranks(queries, targets)) == [2, 1, 3]
    assert list(retrieval_ranks(targets, queries)) == [1, 1, 2]


def test_zero_vectors_are_at_similarity_zero_from_everything():
    queries = np.array([[0.0, 0.0], [1.0, 0.0]])
    targets = np.array([[-1.0, 0.0], [0.0, 0.0]])
    # query 0 (missing) ties with both targets: rank 2; query 1's partner is
    # missing (similarity 0) but the wrong target is further (-1): rank 1
    assert list(retrieval_ranks(queries, targets)) == [2, 1]


def test_errors_say_what_to_pass():
    with pytest.raises(ValueError, match="same length.*query_groups and target_groups"):
        retrieval_ranks(np.eye(3), np.ones((2, 3)))
    with pytest.raises(ValueError, match="both query_groups and target_groups"):
        recall_at_k(np.eye(2), np.eye(2), query_groups=[0, 1])
    with pytest.raises(ValueError, match="query 1 .*no correct target"):
        retrieval_ranks(np.eye(2), np.eye(2), query_groups=[0, 5], target_groups=[0, 1])
    with pytest.raises(ValueError, match="k must be a positive int"):
        recall_at_k(np.eye(2), np.eye(2), k=0)
    with pytest.raises(ValueError, match="k must be a positive int"):
        recall_at_k(np.eye(2), np.eye(2), k=True)
    with pytest.raises(ValueError, match="row 1, column 0: the vectors must be finite"):
        recall_at_k(np.array([[1.0, 0.0], [np.nan, 1.0]]), np.eye(2))
    with pytest.raises(ValueError, match="same width"):
        recall_at_k(np.eye(2), np.eye(3)[:2])
