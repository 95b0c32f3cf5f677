"""The two kernels: CPU hides GPUs, GPU refuses clearly without CUDA."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager

from tools import kernels


def test_specs_are_installed_in_the_environment():
    specs = KernelSpecManager().find_kernel_specs()
    for name in ("mmbook-cpu", "mmbook-gpu"):
        assert name in specs, f"{name} is not registered: run `make setup`"
        assert Path(specs[name]).resolve().is_relative_to(Path(sys.prefix).resolve())
        installed = json.loads((Path(specs[name]) / "kernel.json").read_text())
        assert installed == kernels.kernel_specs()[name]


def test_cpu_kernel_hides_gpus():
    assert kernels.kernel_specs()["mmbook-cpu"]["env"]["CUDA_VISIBLE_DEVICES"] == ""


def test_gpu_kernel_refuses_without_cuda():
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, "-m", "tools.kernels", "gpu", "-f", "unused.json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "no CUDA device is visible" in result.stderr


def test_install_writes_both_specs(tmp_path):
    paths = kernels.install(prefix=str(tmp_path))
    assert sorted(Path(p).name for p in paths) == ["mmbook-cpu", "mmbook-gpu"]


def test_unknown_command_prints_usage():
    result = subprocess.run(
        [sys.executable, "-m", "tools.kernels", "nope"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0 and "usage" in result.stderr


@pytest.mark.parametrize("name", ["mmbook-cpu", "mmbook-gpu"])
def test_argv_uses_this_interpreter(name):
    assert kernels.kernel_specs()[name]["argv"][0] == sys.executable
