"""Task helpers: a remote task is retried only for transient failures, never cached, bounded in time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar, cast

from prefect import Task, task
from prefect.cache_policies import NONE
from prefect.client.schemas.objects import State, TaskRun
from prefect.utilities.annotations import quote

from atlasflow.errors import TransientError

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")


def transient_only(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry condition: only failures that survived the client's own transient retries."""
    try:
        state.result()
    except TransientError:
        return True
    except Exception:
        return False
    return False


def opaque(value: T) -> T:
    """``value`` hidden from Prefect's parameter introspection.

    Prefect visits every element of a task's arguments (to track dependencies); for thousands of issues
    or rows that costs more than the work itself.
    """
    return cast(T, quote(value))


def remote_task(timeout_seconds: int, retry_delay_seconds: int = 5) -> Callable[[Callable[P, R]], Task[P, R]]:
    """Decorator for a task that talks to Jira or Confluence: retried (twice) only for transient failures
    that outlived the client's own retries, never cached, bounded in time.
    """
    return task(
        retries=2,
        retry_delay_seconds=retry_delay_seconds,
        retry_condition_fn=transient_only,
        cache_policy=NONE,
        timeout_seconds=timeout_seconds,
    )
