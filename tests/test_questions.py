"""Questions about a scene, answered by the small reader of ``tests/shapes_reader.py``."""

import re

import pytest

from mmlib.data.scenes import make_scenes
from mmlib.data.world import ANSWERS
from tests.shapes_reader import holds, objects_of, resolve


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(400, seed=7)


def test_questions_are_answered_by_the_attributes(scenes):
    kinds = set()
    for i, pairs in enumerate(scenes.qa):
        objects = objects_of(scenes, i)
        assert pairs[0] == ("how many shapes?", ("one", "two")[len(objects) - 1])
        for question, answer in pairs:
            assert answer in ANSWERS
            kinds.add(question.split()[1])
            if m := re.match(r"^what (colour|shape|size) is (.+)\?$", question):
                column = {"shape": 0, "colour": 1, "size": 2}[m[1]]
                assert objects[resolve(m[2], objects)][column] == answer
            elif m := re.match(r"^where is (.+)\?$", question):
                assert objects[resolve(m[1], objects)][3] == answer
            elif m := re.match(
                r"^is (the .+) (left of|right of|above|below) (the .+)\?$", question
            ):
                a, b = resolve(m[1], objects), resolve(m[3], objects)
                centres = scenes.centres[i]
                opposite = {"left of": "right of", "right of": "left of", "above": "below"}
                if answer == "yes":
                    assert holds(m[2], centres[a], centres[b])
                else:  # a clear "no": the opposite holds
                    assert holds(opposite.get(m[2], "above"), centres[a], centres[b])
            elif m := re.match(r"^is there a (\w+) (\w+)\?$", question):
                present = any(obj[1] == m[1] and obj[0] == m[2] for obj in objects)
                assert answer == ("yes" if present else "no")
            else:
                assert question == "how many shapes?", question
    assert kinds == {"many", "colour", "shape", "size", "is", "the", "there"}
    answers = [a for pairs in scenes.qa for q, a in pairs if q.startswith("is ")]
    assert 0.35 < answers.count("yes") / len(answers) < 0.65  # yes/no questions are balanced
