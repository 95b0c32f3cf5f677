"""The book's two Jupyter kernels, registered inside the virtual environment.

- ``mmbook-cpu`` hides every GPU (``CUDA_VISIBLE_DEVICES=""``): the kernel the stored outputs
  are made and checked with.
- ``mmbook-gpu`` runs the same environment with the GPU visible, and refuses to start, with a
  clear message, when no CUDA device is there.

``python -m tools.kernels install`` registers both under ``sys.prefix`` (like
``ipykernel install --sys-prefix``); ``python -m tools.kernels gpu -f FILE`` is the GPU
kernel's launcher.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

__all__ = ["kernel_specs", "install", "launch_gpu_kernel"]

NO_GPU_MESSAGE = (
    "mmbook-gpu: no CUDA device is visible (torch.cuda.is_available() is False). "
    "Use the mmbook-cpu kernel on this machine."
)


def kernel_specs(python: str | None = None) -> dict[str, dict]:
    """The kernel.json contents of ``mmbook-cpu`` and ``mmbook-gpu`` for interpreter ``python``
    (default: the running interpreter, ``sys.executable``)."""
    python = sys.executable if python is None else python
    return {
        "mmbook-cpu": {
            "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "mmbook (CPU)",
            "language": "python",
            "env": {"CUDA_VISIBLE_DEVICES": "", "MMBOOK_KERNEL": "cpu"},
            "metadata": {"debugger": True},
        },
        "mmbook-gpu": {
            "argv": [python, str(Path(__file__).resolve()), "gpu", "-f", "{connection_file}"],
            "display_name": "mmbook (GPU)",
            "language": "python",
            "env": {"MMBOOK_KERNEL": "gpu"},
            "metadata": {"debugger": True},
        },
    }


def install(prefix: str = sys.prefix) -> list[str]:
    """Register both kernels under ``prefix`` (default: this environment). Returns their paths."""
    from jupyter_client.kernelspec import KernelSpecManager

    manager = KernelSpecManager()
    paths = []
    for name, spec in kernel_specs().items():
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "kernel.json").write_text(json.dumps(spec, indent=1))
            paths.append(manager.install_kernel_spec(tmp, name, prefix=prefix))
    return paths


def launch_gpu_kernel(argv: list[str]) -> int:
    """Start an IPython kernel if CUDA is visible; otherwise print why not and return 1."""
    import torch

    if not torch.cuda.is_available():
        print(NO_GPU_MESSAGE, file=sys.stderr)
        return 1
    from ipykernel import kernelapp

    kernelapp.launch_new_instance(argv=argv)
    return 0


if __name__ == "__main__":
    command, rest = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command == "install":
        for path in install():
            print("installed kernel", Path(path).name)
    elif command == "gpu":
        sys.exit(launch_gpu_kernel(rest))
    else:
        sys.exit("usage: python -m tools.kernels install | gpu -f CONNECTION_FILE")
