"""mmlib.evaluation.metrics.question_prior: the blind, question-only baseline."""

from mmlib.evaluation.metrics import question_prior
from tests.bad_input import raises_naming


def test_question_prior_answers_each_question_with_its_most_common_answer():
    questions = ["what colour is the circle?"] * 3 + ["how many shapes?"]
    prior = question_prior(questions, ["red", "blue", "red", "two"])
    assert prior == {"what colour is the circle?": "red", "how many shapes?": "two"}
    assert question_prior(["q", "q"], ["b", "a"]) == {"q": "b"}  # a tie: the first met
    with raises_naming(ValueError, "questions"):
        question_prior(["q"], ["a", "b"])
    with raises_naming(TypeError, "answers"):
        question_prior(["q"], [1])
