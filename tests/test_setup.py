"""Setup and packaging: scripts/setup.sh's output, pyproject metadata, what the README promises about installing."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESOLVER_ERROR = ("ERROR: pip's dependency resolver does not currently take into account all the packages that are "
                  "installed. This behaviour is the source of the following dependency conflicts.\n"
                  "pyrender 0.1.45 requires PyOpenGL==3.1.0, but you have pyopengl 3.1.10 which is incompatible.\n")


def run_setup(tmp_path: Path, **env) -> tuple[subprocess.CompletedProcess, list[str]]:
    """scripts/setup.sh in a copy of the repository whose .venv holds a fake pip that records its arguments
    and, when asked for PyOpenGL 3.1.10, prints pip's resolver ERROR as real pip does."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    for name in ("scripts/setup.sh", "requirements.txt", "requirements-test.txt", "pyproject.toml"):
        shutil.copy(REPO / name, root / name)
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    calls = tmp_path / "pip_calls.txt"
    (bin_dir / "pip").write_text(
        "#!/usr/bin/env bash\n"
        f'echo "$*" >> {calls}\n'
        f'if [[ "$*" == *PyOpenGL==3.1.10* ]]; then printf %s "{RESOLVER_ERROR}" >&2; fi\n'
        "exit 0\n")
    (bin_dir / "python").write_text("#!/usr/bin/env bash\nexit 0\n")
    for exe in bin_dir.iterdir():
        exe.chmod(0o755)
    proc = subprocess.run(["bash", "scripts/setup.sh"], cwd=root, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "ADAMOTION_SETUP_SKIP_APT": "1", **env})
    return proc, calls.read_text().splitlines() if calls.exists() else []


def test_setup_explains_the_pyopengl_conflict_in_one_line_instead_of_pips_error(tmp_path):
    proc, calls = run_setup(tmp_path)
    assert proc.returncode == 0, proc.stderr
    output = proc.stdout + proc.stderr
    assert "ERROR" not in output and "dependency resolver" not in output, output
    notes = [line for line in output.splitlines() if "PyOpenGL" in line]
    assert len(notes) == 1 and "expected" in notes[0], output
    assert any("PyOpenGL==3.1.10" in c for c in calls) and any(c.startswith("install -q torch==2.13.0") for c in calls)


def test_setup_takes_torch_from_the_cpu_wheel_index_when_asked(tmp_path):
    proc, calls = run_setup(tmp_path, TORCH_INDEX_URL="https://download.pytorch.org/whl/cpu")
    assert proc.returncode == 0, proc.stderr
    (torch_call,) = [c for c in calls if c.startswith("install -q torch==")]
    assert torch_call == "install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in readme
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in readme


def test_pyproject_licence_is_an_spdx_string_the_build_backend_accepts():
    import tomllib

    import setuptools
    from packaging.version import Version

    data = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert data["project"]["license"] == "Apache-2.0"  # PEP 639 SPDX expression, not the deprecated table
    (requirement,) = data["build-system"]["requires"]
    minimum = Version(re.fullmatch(r"setuptools>=([\d.]+)", requirement).group(1))
    assert minimum >= Version("77")  # the first setuptools that reads SPDX license strings
    assert Version(setuptools.__version__) >= minimum  # the installed backend meets it
    # The backend itself reads the metadata without a licence deprecation warning.
    proc = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c",
                           "from setuptools.config.pyprojecttoml import read_configuration; "
                           "print(read_configuration('pyproject.toml')['project']['license'])"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "Apache-2.0", proc.stderr[-2000:]


def test_first_start_index_build_time_is_stated_once_and_matches_the_measurement():
    """README and `python -m app --help` quote the same first-start figure, the one `adamotion bench app` measured."""
    import json

    from app.config import INDEX_BUILD_NOTE

    bench = json.loads((REPO / "checkpoints" / "default" / "bench.json").read_text(encoding="utf-8"))["app"]
    measured = bench["cold_load_s"] - bench["load_s"]  # first start minus a start that reads the cached indexes
    assert INDEX_BUILD_NOTE == f"~{measured:.0f} s on 2 CPU cores"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert INDEX_BUILD_NOTE in readme
    stated = {int(n) for n in re.findall(r"~(\d+) s on (?:2 CPU cores|the first start)", readme)}
    assert stated == {round(measured)}, stated
    proc = subprocess.run([sys.executable, "-m", "app", "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert INDEX_BUILD_NOTE in " ".join(proc.stdout.split()), proc.stdout
