"""One installable namespace: the wheel holds ``atlasflow`` only, and a project's own ``flows/`` and
``blocks/`` neither shadow it nor get overwritten by it; every block passes Prefect's standard suite."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from prefect.blocks.core import Block
from prefect.testing.standard_test_suites import BlockStandardTestSuite

import atlasflow.blocks

REPO_ROOT = Path(__file__).resolve().parents[1]
BLOCKS = [
    value
    for value in vars(atlasflow.blocks).values()
    if isinstance(value, type) and issubclass(value, Block) and value.__module__.startswith("atlasflow.")
]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the project (the build leaves nothing in the checkout)."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    shutil.copytree(REPO_ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    pip(["wheel", "--no-deps", "-w", str(out), str(source)])
    return next(out.glob("atlasflow-*.whl"))


def pip(args: list[str]) -> None:
    subprocess.run([sys.executable, "-m", "pip", *args, "--no-build-isolation", "-q"], check=True, capture_output=True)


def test_the_wheel_holds_atlasflow_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    distribution, version = wheel.name.split("-")[:2]
    assert {name.split("/")[0] for name in names} == {"atlasflow", f"{distribution}-{version}.dist-info"}
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "[prefect.collections]\natlasflow = atlasflow.blocks" in entry_points


def test_the_runtime_requirements_leave_pandas_to_the_benchmarks(wheel: Path) -> None:
    """pandas and numpy (77 MB) are no runtime dependency: only bench/bench_excel.py's baseline uses them."""
    names = zipfile.ZipFile(wheel).namelist()
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    runtime = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert any("prefect" in line for line in runtime), runtime
    assert not [line for line in runtime if "pandas" in line or "numpy" in line], runtime


def test_installs_beside_a_distribution_that_ships_flows_and_blocks(wheel: Path, tmp_path: Path) -> None:
    """Both wheels go into one target: nothing of the other is overwritten, and removing it keeps ours."""
    other = tmp_path / "other"
    for package in ("flows", "blocks"):
        (other / package).mkdir(parents=True)
        (other / package / "__init__.py").write_text(f"OWNER = 'team-{package}'\n")
    (other / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "team-project"\nversion = "1"\n[tool.setuptools]\npackages = ["flows", "blocks"]\n'
    )
    target = tmp_path / "site"
    for source in (str(other), str(wheel)):
        pip(["install", "--no-deps", "--target", str(target), source])
    assert (target / "flows" / "__init__.py").read_text() == "OWNER = 'team-flows'\n"
    assert (target / "blocks" / "__init__.py").read_text() == "OWNER = 'team-blocks'\n"
    assert (target / "atlasflow" / "flows" / "jira_export.py").is_file()


def test_imports_from_a_project_with_its_own_flows_and_blocks(tmp_path: Path) -> None:
    for package in ("flows", "blocks"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("raise ImportError('the team project was imported')\n")
    done = subprocess.run(
        [sys.executable, "-c", "from atlasflow.flows.jira_export import jira_export; print(jira_export.name)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "jira-export"


def test_the_checkout_entry_points_re_export_the_installed_flows() -> None:
    """``prefect.yaml``'s entrypoints (root ``flows/``) name the installed flows, and installed code never
    imports the root folders."""
    entrypoints = {
        line.split("entrypoint:")[1].strip()
        for line in (REPO_ROOT / "prefect.yaml").read_text().splitlines()
        if "entrypoint:" in line
    }
    assert entrypoints
    for entrypoint in entrypoints:
        path, name = entrypoint.split(":")
        module = path.removesuffix(".py").replace("/", ".").replace("flows.", "atlasflow.flows.", 1)
        source = (REPO_ROOT / path).read_text()
        assert f"from {module} import" in source and name in source
    installed = "\n".join(p.read_text() for p in (REPO_ROOT / "src" / "atlasflow").rglob("*.py"))
    for root_package in ("flows", "blocks", "deployments", "clients", "formats", "sandbox"):
        assert f"\nfrom {root_package}." not in installed and f"\nimport {root_package}" not in installed


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.__name__)
class TestEveryBlock(BlockStandardTestSuite):
    @pytest.fixture
    def block(self, block: type[Block]) -> type[Block]:  # type: ignore[override]
        return block
