"""The reports folder: every file a job reads or writes by a path parameter lies inside it.

The folder is ``$ATLASFLOW_REPORTS_ROOT``, by default ``reports`` in the working directory. A relative path
is taken from the working directory (so the default ``output_dir="reports"`` is the folder itself), then
resolved (symbolic links and ``..`` included) and refused unless it lies inside the folder. A refused file
gets the same message whether or not something exists at the path, so a parameter cannot probe the disk.
"""

from __future__ import annotations

import os
from pathlib import Path

from atlasflow.errors import ConfigurationError

REPORTS_ROOT_ENV = "ATLASFLOW_REPORTS_ROOT"
DEFAULT_ROOT = "reports"


class OutsideReportsFolder(ConfigurationError):
    """A path parameter that does not name a usable place inside the reports folder."""


def reports_root() -> Path:
    """The reports folder (resolved; it need not exist yet)."""
    return Path(os.environ.get(REPORTS_ROOT_ENV) or DEFAULT_ROOT).expanduser().resolve()


def _inside(value: str) -> Path | None:
    """``value`` resolved, if inside the reports folder; else ``None``."""
    if not value.strip() or "\x00" in value:
        return None
    path = Path(value).expanduser().resolve()
    return path if path.is_relative_to(reports_root()) else None


def output_directory(value: str, parameter: str = "output_dir") -> Path:
    """The directory ``value`` names, inside the reports folder (created later by the writer).

    Raises:
        OutsideReportsFolder: The path lies outside the folder.
    """
    path = _inside(value)
    if path is None:
        raise OutsideReportsFolder(
            f"{parameter}: {value!r} is not inside the reports folder {reports_root()} "
            f"(set {REPORTS_ROOT_ENV} to choose the folder)"
        )
    return path


def input_file(value: str, parameter: str) -> Path:
    """The existing file ``value`` names inside the reports folder.

    Raises:
        OutsideReportsFolder: Outside the folder, missing, or not a regular file: one message for all,
            which does not say which.
    """
    path = _inside(value)
    if path is None or not path.is_file():
        raise OutsideReportsFolder(
            f"{parameter}: no file {value!r} in the reports folder {reports_root()} "
            f"(files are read only from inside it; set {REPORTS_ROOT_ENV} to choose the folder)"
        )
    return path
