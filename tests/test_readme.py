"""The README deploys as a Space and its test command is the one CI runs."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _commands(readme: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", readme, flags=re.S)]


def test_front_matter_is_a_gradio_space_with_quoted_versions():
    readme = (ROOT / "README.md").read_text()
    front = readme.split("---\n")[1]
    meta = yaml.safe_load(front)
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert meta["sdk_version"] == "6.31.0" and meta["python_version"] == "3.11"
    assert re.search(r'^sdk_version: "[^"]+"$', front, flags=re.M)
    assert re.search(r'^python_version: "[^"]+"$', front, flags=re.M)
    assert {"title", "emoji", "license"} <= set(meta)


def test_ci_runs_the_readme_test_command_verbatim():
    setup, test = _commands((ROOT / "README.md").read_text())[:2]
    assert setup.endswith("python app.py") and "\n" not in setup
    assert test.endswith("python -m pytest") and "\n" not in test
    assert test in (ROOT / ".ci" / "run").read_text().splitlines()


def test_requirements_pin_torch_and_every_package():
    lines = [line.split(";")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert "torch==2.13.0" in lines
    assert all("==" in line for line in lines), [line for line in lines if "==" not in line]
