"""mmlib/device.py: choosing where tensors live, and describing it."""

import torch

import mmlib
from tests.bad_input import raises_naming


def test_get_device_defaults_to_an_available_device():
    device = mmlib.get_device()
    assert device.type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        assert device.type != "cuda"


def test_get_device_honours_cpu_and_env(monkeypatch):
    assert mmlib.get_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("MMBOOK_DEVICE", "cpu")
    assert mmlib.get_device() == torch.device("cpu")


def test_get_device_rejects_unknown_and_unavailable(monkeypatch):
    with raises_naming(ValueError, "prefer"):
        mmlib.get_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with raises_naming(ValueError, "prefer"):
        mmlib.get_device("cuda")


def test_device_report_keys():
    report = mmlib.device_report(torch.device("cpu"))
    assert set(report) == {"python", "torch", "platform", "device", "device_name"}
    assert report["device"] == "cpu" and report["torch"] == torch.__version__
