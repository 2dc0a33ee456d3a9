"""N-way K-shot episodes: reproducible, N distinct classes, K distinct support objects per class from the train
split, the query objects from the test split, labels remapped to 0..N-1, and clear errors for impossible draws."""

import numpy as np
import pytest

from pix2point.training.finetuning.episodes import draw_episode, episode_seed

# 12 classes; class c has 30 + c train objects and 25 test objects, rows shuffled so indices are not class-major.
_rng = np.random.default_rng(3)
TRAIN = _rng.permutation(np.concatenate([np.full(30 + c, c) for c in range(12)])).astype(np.int16)
TEST = _rng.permutation(np.repeat(np.arange(12), 25)).astype(np.int16)


def draw(ways=5, shots=10, fold=0, seed=0, queries=20, train=TRAIN, test=TEST):
    return draw_episode(train, test, seed=seed, ways=ways, shots=shots, fold=fold, queries=queries)


@pytest.mark.parametrize(("ways", "shots"), [(5, 10), (5, 20), (10, 10), (10, 20)])
def test_an_episode_has_n_classes_k_support_and_the_queries_of_each(ways, shots):
    episode = draw(ways, shots, fold=3)
    assert len(set(episode.classes.tolist())) == ways and set(episode.classes.tolist()) <= set(TRAIN.tolist())
    assert len(episode.support) == ways * shots and len(set(episode.support.tolist())) == ways * shots
    assert len(episode.query) == ways * 20 and len(set(episode.query.tolist())) == ways * 20
    # Every support row is of the class its remapped label names, and so is every query row.
    np.testing.assert_array_equal(TRAIN[episode.support], episode.classes[episode.support_labels])
    np.testing.assert_array_equal(TEST[episode.query], episode.classes[episode.query_labels])
    for label in range(ways):
        assert np.sum(episode.support_labels == label) == shots and np.sum(episode.query_labels == label) == 20
    assert episode.support_labels.dtype == np.int64 and set(episode.query_labels.tolist()) == set(range(ways))


def test_episodes_are_a_pure_function_of_seed_ways_shots_and_fold():
    first, again = draw(10, 20, fold=7, seed=4), draw(10, 20, fold=7, seed=4)
    for name in ("classes", "support", "query", "support_labels", "query_labels"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert episode_seed(4, 10, 20, 7) == episode_seed(4, 10, 20, 7)
    others = [draw(10, 20, fold=8, seed=4), draw(10, 20, fold=7, seed=5), draw(10, 10, fold=7, seed=4)]
    assert all(not np.array_equal(first.support, other.support) for other in others)
    assert len({episode_seed(4, 10, 20, 7), episode_seed(4, 10, 20, 8), episode_seed(5, 10, 20, 7)}) == 3


def test_folds_draw_different_classes_and_objects():
    episodes = [draw(5, 10, fold=fold) for fold in range(10)]
    assert len({tuple(episode.classes.tolist()) for episode in episodes}) > 5
    assert len({tuple(np.sort(episode.support).tolist()) for episode in episodes}) == 10


def test_the_support_comes_from_the_train_split_and_the_query_from_the_test_split():
    """Fails if the sampler leaks: rows are tagged by split, so a query drawn from the train split (or a support
    object from the test split) would show up as a shared tag."""
    train_ids = np.array([f"train_{i}" for i in range(len(TRAIN))])
    test_ids = np.array([f"test_{i}" for i in range(len(TEST))])
    for fold in range(10):
        episode = draw(10, 20, fold=fold)
        support, query = set(train_ids[episode.support]), set(test_ids[episode.query])
        assert all(name.startswith("train_") for name in support) and all(name.startswith("test_") for name in query)
        assert not support & query


def test_a_way_count_above_the_classes_is_an_error_naming_ways():
    eight = TRAIN[TRAIN < 8], TEST[TEST < 8]
    with pytest.raises(ValueError, match=r"param 'ways' = 10 exceeds the 8 classes"):
        draw(10, 10, train=eight[0], test=eight[1])


def test_too_few_objects_of_a_class_is_an_error_naming_the_param():
    with pytest.raises(ValueError, match=r"param 'shots' = 31 exceeds the 30 train objects of class 0"):
        draw(12, 31)
    with pytest.raises(ValueError, match=r"param 'queries' = 26 exceeds the 25 test objects"):
        draw(5, 10, queries=26)
