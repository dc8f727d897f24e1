"""A run's progress bar in the Prefect UI."""

from __future__ import annotations

from typing import cast
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact


class RunProgressBar:
    """A progress artifact of the current run, shown (as a bar with a line of text) on its page in the UI."""

    def __init__(self, description: str) -> None:
        self.id = cast(UUID, create_progress_artifact(0.0, description=description))  # sync in a sync flow

    def update(self, percent: float, description: str) -> None:
        """Move the bar to ``percent`` (0–100) and say where the job is."""
        update_progress_artifact(self.id, min(100.0, max(0.0, percent)), description=description)
