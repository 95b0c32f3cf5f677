"""mmlib.validate: the shared input checks and their messages (the contract every error
test elsewhere relies on: "<name> must be <expected>, got <given>")."""

import pytest
import torch

from mmlib import validate
from tests.bad_input import raises_naming


def test_check_tensor_messages():
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor, got list \[1\]"):
        validate.check_tensor("x", [1])
    with pytest.raises(ValueError, match=r"x must have 2 dimensions, got a torch.float32 tensor"):
        validate.check_tensor("x", torch.zeros(3), ndim=2)
    with pytest.raises(TypeError, match="x must have dtype torch.int64"):
        validate.check_tensor("x", torch.zeros(3), dtype=torch.int64)
    with pytest.raises(TypeError, match="x must be an integer tensor"):
        validate.check_tensor("x", torch.zeros(3, dtype=torch.bool), dtype="integer")
    with pytest.raises(ValueError, match=r"x must have shape \(\*, 4\)"):
        validate.check_tensor("x", torch.zeros(2, 3), shape=(None, 4))
    assert validate.check_tensor("x", torch.zeros(0), allow_empty=True).numel() == 0


def test_scalar_checks():
    assert validate.check_int("n", 3, minimum=1) == 3
    with pytest.raises(TypeError, match="n must be an int"):
        validate.check_int("n", True)
    assert validate.check_float("lr", 1, low=0) == 1.0
    with pytest.raises(TypeError, match="lr must be a number"):
        validate.check_float("lr", "0.1")
    with pytest.raises(ValueError, match=r"lr must be in \[0, 1\]"):
        validate.check_float("lr", 2.0, low=0, high=1)
    assert validate.check_choice("mode", "a", ["a", "b"]) == "a"
    with pytest.raises(ValueError, match=r"mode must be one of \['a', 'b'\], got 'c'"):
        validate.check_choice("mode", "c", ["a", "b"])
    assert validate.check_strings("texts", ("a", "b")) == ["a", "b"]
    with pytest.raises(TypeError, match="texts must be a list of str, got str"):
        validate.check_strings("texts", "a caption")
    with pytest.raises(TypeError, match="questions must hold only str, got int"):
        validate.check_strings("questions", ["what?", 3])


def test_check_images_and_token_ids():
    with pytest.raises(ValueError, match="images must have 3 channels"):
        validate.check_images("images", torch.zeros(1, 1, 32, 32))
    assert validate.check_images("images", torch.zeros(1, 3, 8, 8), size=None).shape[-1] == 8
    nan = torch.full((1, 3, 32, 32), float("nan"))
    assert validate.check_images("images", nan) is nan  # forward passes do not scan values
    with pytest.raises(ValueError, match="images must hold only finite values"):
        validate.check_images("images", nan, finite=True)  # entry points that see data once do
    with pytest.raises(ValueError, match=r"ids must hold token ids in \[0, 5\)"):
        validate.check_token_ids("ids", torch.tensor([[0, 5]]), 5)


def test_require_states_rule_and_given_value():
    validate.require(True, "size", "even", 3)
    with pytest.raises(ValueError, match=r"^size must be even, got 3$"):
        validate.require(False, "size", "even", 3)
    with pytest.raises(ValueError, match=r"x must be 1-D, got a torch.float32 tensor of shape"):
        validate.require(False, "x", "1-D", torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"^caption must be short, got 9 words$"):
        validate.require(False, "caption", "short", "9 words")


def test_check_ints_names_the_bad_one():
    validate.check_ints(minimum=1, a=1, b=2)
    with raises_naming(ValueError, "b"):
        validate.check_ints(minimum=1, a=1, b=0)
    with raises_naming(TypeError, "a"):
        validate.check_ints(a=1.5)


def test_checked_embedding_names_the_argument_and_keeps_the_weights():
    torch.manual_seed(0)
    plain = torch.nn.Embedding(5, 3)
    checked = validate.CheckedEmbedding(5, 3, argument="idx")
    checked.load_state_dict(plain.state_dict())  # same keys and shapes
    ids = torch.tensor([[0, 4, 2]])
    assert torch.equal(checked(ids), plain(ids))
    with pytest.raises(
        ValueError, match=r"idx must hold token ids in \[0, 5\), got values from 0 to 5"
    ):
        checked(torch.tensor([[0, 5]]))
    with pytest.raises(ValueError, match=r"from -1 to 2"):
        checked(torch.tensor([[-1, 2]]))


def test_raises_naming_fails_when_the_message_names_another_argument():
    with pytest.raises(AssertionError, match="Regex pattern did not match"):
        with raises_naming(ValueError, "grid"):
            raise ValueError("gridsize must be 2, got 3")
    with pytest.raises(TypeError):
        with raises_naming(ValueError, "grid"):
            raise TypeError("grid must be an int, got 'a'")
