"""mmlib/training/two_process_run.py: chapter 7's run, here in one process (tests/test_ddp.py
checks that two processes under torchrun match one)."""

from mmlib.models.fusion import FusionClassifier
from mmlib.training import two_process_run


def test_the_problem_and_one_process_run():
    model, batches, test = two_process_run.fusion_problem(n=200)
    assert isinstance(model, FusionClassifier)
    images, tokens, lengths, labels = test
    assert images.shape == (50, 3, 32, 32) and len(tokens) == len(lengths) == len(labels) == 50
    assert len(batches) == 150 // two_process_run.BATCH  # the last, shorter batch is dropped
    history = two_process_run.fusion_run(model, batches)
    assert len(history.loss) == two_process_run.STEPS
    again = two_process_run.fusion_problem(n=200)[0]
    two_process_run.fusion_run(again, batches)
    assert all((a == b).all() for a, b in zip(model.parameters(), again.parameters(), strict=True))
