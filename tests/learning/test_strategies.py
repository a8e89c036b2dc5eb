"""Query strategies on hand-made probability arrays."""

import numpy as np
import pytest

from learning.strategies import PoolScores, available, rank, score, select

PROBS = np.array([[0.95, 0.05], [0.55, 0.45], [0.70, 0.30], [0.51, 0.49], [0.99, 0.01]])


def test_least_confident_row_is_picked_first():
    picked, scores = select("least_confidence", PoolScores(PROBS), 2)
    assert picked.tolist() == [3, 1]
    assert scores[0] == pytest.approx(0.49)


def test_margin_and_entropy_order_three_classes():
    probs = np.array([[0.5, 0.45, 0.05], [0.4, 0.3, 0.3], [0.9, 0.05, 0.05]])
    assert select("margin", PoolScores(probs), 3)[0].tolist() == [0, 1, 2]  # margins .05 .10 .85
    assert select("entropy", PoolScores(probs), 1)[0].tolist() == [1]  # the flattest row


def test_mc_dropout_picks_where_passes_disagree():
    # rows 0 and 1 have the same mean (0.5, 0.5); the passes agree on row 0 and disagree on row 1
    mc = np.array([[[0.5, 0.5], [0.9, 0.1], [0.8, 0.2]], [[0.5, 0.5], [0.1, 0.9], [0.8, 0.2]]])
    scores = PoolScores(mc.mean(axis=0), mc_probabilities=mc)
    assert select("mc_dropout", scores, 1)[0].tolist() == [1]
    with pytest.raises(ValueError, match="MC-dropout"):
        select("mc_dropout", PoolScores(PROBS), 1)


def test_batch_diverse_skips_near_copies_and_balances_classes():
    rng = np.random.default_rng(0)
    n = 40
    probs = np.column_stack([np.linspace(0.45, 0.55, n), 1 - np.linspace(0.45, 0.55, n)])
    embeddings = rng.normal(size=(n, 8))
    embeddings[1:10] = embeddings[0]  # nine exact copies of the most uncertain-looking image
    picked, _ = select("batch_diverse", PoolScores(probs, embeddings=embeddings), 6)
    assert len(set(picked.tolist())) == 6
    assert len(set(picked.tolist()) & set(range(10))) <= 1
    predicted = probs[picked].argmax(axis=1)
    assert abs(int((predicted == 0).sum()) - int((predicted == 1).sum())) <= 1


def test_random_is_reproducible_with_a_seed():
    scores = PoolScores(np.tile([0.5, 0.5], (100, 1)))
    first = select("random", scores, 10, seed=7)[0]
    assert np.array_equal(first, select("random", scores, 10, seed=7)[0])
    assert not np.array_equal(first, select("random", scores, 10, seed=8)[0])


def test_random_share_keeps_an_unbiased_part():
    probs = np.column_stack([np.linspace(0.5, 1.0, 200), 1 - np.linspace(0.5, 1.0, 200)])
    picked, _ = select("least_confidence", PoolScores(probs), 20, random_share=0.25, seed=1)
    assert len(set(picked.tolist())) == 20
    assert picked[:15].tolist() == list(range(15))  # the 15 least confident
    assert (picked[15:] >= 15).all()  # 5 drawn from the rest


def test_k_larger_than_pool_and_unknown_names():
    assert len(select("entropy", PoolScores(PROBS), 50)[0]) == 5
    with pytest.raises(ValueError, match="choose one of"):
        select("oracle", PoolScores(PROBS), 1)
    assert {"random", "least_confidence", "margin", "entropy", "mc_dropout", "batch_diverse", "cold_start"} == set(
        available()
    )
    assert score("least_confidence", PoolScores(PROBS)).argmax() == 3


def test_rank_keeps_a_random_share_in_every_batch():
    probs = np.column_stack([np.linspace(0.5, 1.0, 100), 1 - np.linspace(0.5, 1.0, 100)])
    order, _ = rank("least_confidence", PoolScores(probs), batch=10, random_share=0.2, seed=3)
    assert sorted(order.tolist()) == list(range(100))  # every image once
    first = order[:10].tolist()
    assert first[:8] == list(range(8))  # eight by uncertainty
    assert all(i >= 8 for i in first[8:])  # two drawn from the rest
    plain, _ = rank("least_confidence", PoolScores(probs), batch=10, random_share=0.0)
    assert plain.tolist() == list(range(100))


def test_a_share_of_each_batch_goes_to_the_likeliest_images_of_a_class_still_learned():
    from learning.strategies import prioritise_classes

    rng = np.random.default_rng(0)
    probabilities = rng.dirichlet(np.ones(3), size=40)
    order = np.arange(40)  # the strategy's own order
    out = prioritise_classes(order, probabilities, [2], batch=10, share=0.3)
    assert sorted(out.tolist()) == list(range(40))  # every image once
    likeliest = np.argsort(-probabilities[:, 2], kind="stable")[:3].tolist()
    assert set(likeliest) <= set(out[:10].tolist())  # the first batch holds the 3 likeliest
    assert prioritise_classes(order, probabilities, [], batch=10, share=0.3).tolist() == order.tolist()


def _clustered_pool(seed: int = 0):
    """Three kinds of film in embedding space (60, 30 and 10 images) and 5 odd ones far away."""
    rng = np.random.default_rng(seed)
    centres = np.eye(8)[:3] * 10
    sizes = (60, 30, 10)
    points = [centres[c] + rng.normal(0, 0.5, (n, 8)) for c, n in enumerate(sizes)]
    outliers = rng.normal(0, 0.5, (5, 8)) + np.eye(8)[5:6] * 25 + np.eye(8)[6:7] * -25
    embeddings = np.vstack([*points, outliers])
    kind = np.concatenate([np.full(n, c) for c, n in enumerate(sizes)] + [np.full(5, -1)])
    probabilities = np.full((len(embeddings), 2), 0.5)  # a new site: the model's doubt says nothing
    return PoolScores(probabilities, embeddings), kind


def test_cold_start_picks_one_typical_film_of_each_kind():
    scores, kind = _clustered_pool()
    picked, _ = select("cold_start", scores, 3, seed=0)
    assert sorted(kind[picked].tolist()) == [0, 1, 2]  # every kind, no odd one
    assert kind[picked[0]] == 0  # the largest kind first
    # random, with the same budget, misses the small kind most of the time
    misses = sum(2 not in kind[select("random", scores, 3, seed=s)[0]] for s in range(50))
    assert misses > 25


def test_cold_start_ranks_its_picks_first_then_hands_over_to_uncertainty():
    scores, kind = _clustered_pool()
    probabilities = scores.probabilities.copy()
    probabilities[:, 0] = np.linspace(0.99, 0.5, len(probabilities))  # the last images are the least sure
    probabilities[:, 1] = 1 - probabilities[:, 0]
    scores = PoolScores(probabilities, scores.embeddings)
    order, _ = rank("cold_start", scores, batch=3, seed=0)
    assert sorted(kind[order[:3]].tolist()) == [0, 1, 2]
    rest = [int(i) for i in order[3:]]
    assert rest == sorted(rest, reverse=True)  # then by margin: least sure first
    assert len(set(order.tolist())) == len(probabilities)


@pytest.mark.parametrize("strategy", available())
def test_an_empty_pool_ranks_to_nothing_with_every_strategy(strategy):
    empty = PoolScores(np.zeros((0, 3)), np.zeros((0, 0)), None)  # what scoring an empty pool gives
    order, values = rank(strategy, empty, batch=20, random_share=0.1, seed=1)
    assert order.shape == (0,) and values.shape == (0,)


def test_cold_start_looks_for_typical_films_among_a_new_sites_own():
    scores, kind = _clustered_pool()
    new = np.isin(kind, [1, 2])  # the old site's films are kind 0, already well read
    order, _ = rank("cold_start", scores, batch=2, seed=0, new=new)
    assert sorted(kind[order[:2]].tolist()) == [1, 2]
    assert len(set(order.tolist())) == len(kind)  # every film still in the queue, once
    # no site marked new: the whole pool's typical films, the largest kind first
    everything, _ = rank("cold_start", scores, batch=2, seed=0, new=np.zeros(len(kind), dtype=bool))
    assert kind[everything[0]] == 0
