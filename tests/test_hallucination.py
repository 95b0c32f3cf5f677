import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from mmlib.data.scenes import make_scenes
from mmlib.data.world import COLOURS, SHAPES
from mmlib.evaluation.hallucination import SAMPLINGS, probe_questions, yes_no_scores
from tests.bad_input import raises_naming


def _objects(scenes, i):
    """The colour-shape pairs in scene i, as ("red", "circle")."""
    n = int(scenes.num_objects[i])
    return {(COLOURS[c], SHAPES[s]) for s, c in scenes.attributes[i, :n, :2].tolist()}


def _asked(question):
    colour, shape = question.removeprefix("is there a ").rstrip("?").split()
    return colour, shape


@pytest.mark.parametrize("sampling", SAMPLINGS)
def test_probes_are_balanced_and_true_of_their_scene(sampling):
    scenes = make_scenes(40, seed=5)
    index, questions, answers = probe_questions(scenes, sampling, seed=1)
    assert index.dtype == torch.long
    assert index.tolist() == [i for i in range(40) for _ in range(2)]
    assert answers == ["yes", "no"] * 40
    for i, question, answer in zip(index.tolist(), questions, answers, strict=True):
        assert (_asked(question) in _objects(scenes, i)) == (answer == "yes")


def test_adversarial_negatives_share_a_word_with_an_object_there():
    scenes = make_scenes(60, seed=6)
    shared = {}
    for sampling in SAMPLINGS:
        index, questions, _ = probe_questions(scenes, sampling, seed=2)
        pairs = zip(index[1::2].tolist(), questions[1::2], strict=True)
        absent = [(i, _asked(q)) for i, q in pairs]
        shared[sampling] = [
            any(c == pc or s == ps for pc, ps in _objects(scenes, i)) for i, (c, s) in absent
        ]
    assert all(shared["adversarial"])
    assert not all(shared["random"])  # random negatives often share nothing


def test_probes_repeat_under_a_seed_and_change_with_it():
    scenes = make_scenes(30, seed=7)
    first = probe_questions(scenes, "random", seed=3)[1]
    assert first == probe_questions(scenes, "random", seed=3)[1]
    assert first != probe_questions(scenes, "random", seed=4)[1]


def test_yes_no_scores_match_scikit_learn_and_count_other_answers_as_no():
    truth = ["yes", "no", "yes", "no", "yes", "no", "no", "yes"]
    said = ["yes", "yes", "no", "no", "yes", "red", "yes", "circle"]
    scores = yes_no_scores(said, truth)
    want = [t == "yes" for t in truth]
    got = [s == "yes" for s in said]
    assert scores["accuracy"] == pytest.approx(accuracy_score(want, got))
    assert scores["precision"] == pytest.approx(precision_score(want, got))
    assert scores["recall"] == pytest.approx(recall_score(want, got))
    assert scores["f1"] == pytest.approx(f1_score(want, got))
    assert scores["yes-rate"] == pytest.approx(4 / 8)
    # by hand: 2 of 4 "yes" are right (precision 0.5), 2 of 4 present objects found (recall 0.5)
    assert (scores["precision"], scores["recall"], scores["accuracy"]) == (0.5, 0.5, 0.5)


def test_a_model_that_always_says_yes():
    scores = yes_no_scores(["yes"] * 4, ["yes", "no", "yes", "no"])
    assert scores == pytest.approx(
        {"accuracy": 0.5, "precision": 0.5, "recall": 1.0, "f1": 2 / 3, "yes-rate": 1.0}
    )
    never = yes_no_scores(["no"] * 4, ["yes", "no", "yes", "no"])
    assert never["precision"] == 0.0 and never["yes-rate"] == 0.0


def test_bad_input():
    scenes = make_scenes(4, seed=8)
    with raises_naming(ValueError, "sampling"):
        probe_questions(scenes, "popular")
    with raises_naming(TypeError, "seed"):
        probe_questions(scenes, "random", seed=1.5)
    with raises_naming(TypeError, "scenes"):
        probe_questions(scenes.images, "random")
    with raises_naming(ValueError, "truth"):
        yes_no_scores(["yes"], ["maybe"])
    with raises_naming(ValueError, "said"):
        yes_no_scores(["yes"], ["yes", "no"])
    with raises_naming(TypeError, "said"):
        yes_no_scores("yes", ["yes"])


@pytest.mark.parametrize("seed", range(5))
def test_yes_no_scores_match_scikit_learn_on_random_answers(seed):
    rows = torch.rand(40, 2, generator=torch.Generator().manual_seed(seed)) < 0.5
    truth = ["yes" if t else "no" for t in rows[:, 0].tolist()]
    said = ["yes" if s else "no" for s in rows[:, 1].tolist()]
    scores = yes_no_scores(said, truth)
    want, got = rows[:, 0].tolist(), rows[:, 1].tolist()
    assert scores["precision"] == pytest.approx(precision_score(want, got, zero_division=0.0))
    assert scores["recall"] == pytest.approx(recall_score(want, got, zero_division=0.0))
    assert scores["f1"] == pytest.approx(f1_score(want, got, zero_division=0.0))
