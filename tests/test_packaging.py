"""pyproject.toml (pip) and environment.yml (conda) name the same packages."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def name_of(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pip_packages() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {name_of(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        names |= {name_of(r) for r in extra}
    return names


def conda_packages() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            names |= {name_of(r) for r in dep["pip"] if not r.startswith("-")}
        else:
            names.add(name_of(dep))
    return names - {"python", "pip"}


def test_conda_and_pip_name_the_same_packages():
    assert conda_packages() == pip_packages(), (
        f"only in environment.yml: {sorted(conda_packages() - pip_packages())}; "
        f"only in pyproject.toml: {sorted(pip_packages() - conda_packages())}"
    )


def test_torch_pins_agree_with_the_makefile():
    makefile = (ROOT / "Makefile").read_text()
    env = (ROOT / "environment.yml").read_text()
    for pin in ("torch==2.14.1", "torchvision==0.29.1"):
        assert pin in makefile and pin in env
