"""The reports folder: paths outside it are refused, with one message whether or not a file is there."""

from __future__ import annotations

from pathlib import Path

import pytest

from atlasflow.files import REPORTS_ROOT_ENV, OutsideReportsFolder, input_file, output_directory


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "reports"
    (folder / "team-a").mkdir(parents=True)
    (folder / "team-a" / "export.xlsx").write_bytes(b"x")
    (tmp_path / "secret.txt").write_text("other team's")
    (folder / "escape").symlink_to(tmp_path)
    monkeypatch.setenv(REPORTS_ROOT_ENV, str(folder))
    monkeypatch.chdir(tmp_path)
    return folder


def test_paths_inside_the_folder_resolve(root: Path) -> None:
    assert output_directory("reports") == root
    assert output_directory("reports/team-a/new") == root / "team-a" / "new"
    assert output_directory(str(root / "team-a")) == root / "team-a"
    assert input_file("reports/team-a/export.xlsx", "compare_to") == root / "team-a" / "export.xlsx"


@pytest.mark.parametrize("value", ["/etc", "..", "reports/..", "reports/../secret", "reports/escape/x", "", "a\x00b"])
def test_directories_outside_the_folder_are_refused(root: Path, value: str) -> None:
    with pytest.raises(OutsideReportsFolder, match=r"output_dir: .* is not inside the reports folder"):
        output_directory(value)


def test_a_refused_file_says_the_same_whether_or_not_it_exists(root: Path) -> None:
    messages = []
    for value in ("/etc/passwd", "/etc/no-such-file", "secret.txt", "reports/escape/secret.txt", "reports/none.xlsx"):
        with pytest.raises(OutsideReportsFolder) as caught:
            input_file(value, "compare_to")
        messages.append(str(caught.value).replace(repr(value), "<value>"))
    assert len(set(messages)) == 1, messages
    assert "no file <value> in the reports folder" in messages[0]
    with pytest.raises(OutsideReportsFolder):
        input_file("reports/team-a", "source")  # a directory is not a file
