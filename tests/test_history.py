"""mmlib/training/history.py: what a training run recorded, its final values and its plot."""

import matplotlib
import torch

from mmlib.training.history import History
from tests.bad_input import raises_naming

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def test_history_final_and_plot():
    history = History(
        loss=[1.0, 0.5, 0.25],
        lr=[0.1] * 3,
        logs=[{}] * 3,
        steps=[2, 3],
        metrics=[{"acc": 0.5}, {"acc": 0.75, "recall": 0.5}],
    )
    assert history.final("acc") == 0.75 and history.final("recall") == 0.5
    with raises_naming(ValueError, "name"):
        history.final("bleu")
    fig, ax = plt.subplots()
    assert history.plot(ax) is ax
    assert [line.get_label() for line in ax.get_legend().get_lines()] == [
        "train loss",
        "acc",
        "recall",
    ]
    assert list(ax.get_lines()[0].get_ydata()) == [1.0, 0.5, 0.25]
    plt.close(fig)
    fig = plt.figure()
    assert History(loss=[1.0]).plot().get_legend() is not None  # draws on the current axes
    plt.close(fig)
    with raises_naming(ValueError, "history"):
        History().plot()
    assert repr(History()) == "History(steps=0, evaluations=0)"


def test_record_keeps_the_loss_and_logs_and_rejects_a_non_finite_loss():
    history = History()
    history.record(1, torch.tensor([0.5, 2.0], dtype=torch.float64), {"acc": 0.0}, 0.1)
    assert (history.loss, history.lr, history.logs) == ([0.5], [0.1], [{"acc": 2.0}])
    with raises_naming(ValueError, "loss") as info:
        history.record(2, torch.tensor([float("inf")]), {}, 0.1)
    assert "at step 2" in str(info.value)  # the message names the step
    assert history.loss == [0.5]
