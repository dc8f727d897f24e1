"""Shell jobs: run a command on a worker with retries, a timeout and the common end-of-run report.

The command runs in ``bash`` through prefect-shell's ``ShellOperation`` (its own process group, so the
whole process tree is stopped on timeout or cancellation). Standard error is folded into standard output,
so the lines the run returns and logs are in the order the command wrote them.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import deque
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.client.schemas.objects import State, TaskRun
from prefect.states import Failed
from prefect_shell import ShellOperation
from prefect_shell.commands import ShellProcess

from atlasflow.errors import ConfigurationError, JobFailed
from atlasflow.runtime.failures import one_line_failures
from atlasflow.runtime.hooks import job_hooks

#: Lines of output a run returns (and shows in its artifact).
TAIL_LINES = 20
#: Seconds between SIGTERM and SIGKILL when a command overruns its timeout.
KILL_GRACE_SECONDS = 5.0


class ShellCommandFailed(JobFailed, RuntimeError):
    """The command exited with a non-zero code."""

    def __init__(self, exit_code: int, tail: list[str]) -> None:
        self.exit_code = exit_code
        self.tail = tail
        last = f"; last output: {tail[-1]}" if tail else ""
        super().__init__(f"command exited with code {exit_code}{last}")


class ShellTimeout(JobFailed, RuntimeError):
    """The command ran longer than its timeout and was stopped."""

    def __init__(self, timeout_seconds: float, tail: list[str]) -> None:
        self.timeout_seconds = timeout_seconds
        self.tail = tail
        last = f"; last output: {tail[-1]}" if tail else ""
        super().__init__(f"command timed out after {timeout_seconds:g} s and was stopped{last}")


def _retry_failed_exit(task: Any, task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a non-zero exit (it may pass); not a timeout (it already took the whole budget)."""
    try:
        state.result()
    except ShellCommandFailed:
        return True
    except Exception:
        return False
    return False


def _stop_group(process: ShellProcess, stopped: threading.Event) -> None:
    """Timer callback: SIGTERM the command's process group, SIGKILL it after a grace period."""
    stopped.set()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)  # ShellOperation starts the shell in its own session
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + KILL_GRACE_SECONDS
        while process.return_code is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if process.return_code is not None:
            return


@task(cache_policy=NONE, retry_condition_fn=_retry_failed_exit)
def run_command(command: str, cwd: str | None, env: dict[str, str], timeout_seconds: float) -> dict[str, Any]:
    """Run ``command`` in bash; the exit code and the last lines of output, or an error naming them."""
    started = time.monotonic()
    stopped = threading.Event()
    with ShellOperation(
        commands=["exec 2>&1", command], env=env, working_dir=cwd, stream_output=True, log_prefix=""
    ) as operation:
        process = operation.trigger()
        timer = threading.Timer(timeout_seconds, _stop_group, args=(process, stopped))
        timer.daemon = True
        timer.start()
        try:
            process.wait_for_completion()
        except RuntimeError:
            pass  # non-zero exit: judged below from the return code
        finally:
            timer.cancel()
        output = process.fetch_result()
        exit_code = process.return_code
    tail = list(deque((line for line in output if line.strip()), maxlen=TAIL_LINES))
    if stopped.is_set():
        raise ShellTimeout(timeout_seconds, tail)
    if exit_code != 0:
        raise ShellCommandFailed(-1 if exit_code is None else exit_code, tail)
    return {
        "exit_code": 0,
        "output": tail,
        "lines": len(output),
        "duration_seconds": round(time.monotonic() - started, 2),
    }


@flow(name="shell-job", **job_hooks())
@one_line_failures
def shell_job(
    command: str,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    timeout_seconds: int = 600,
    retries: int = 2,
    retry_delay_seconds: float = 10.0,
) -> Any:
    """Run a shell command on the worker.

    A non-zero exit is retried (``retries`` times, ``retry_delay_seconds`` apart); a command still running
    after ``timeout_seconds`` is stopped (its whole process tree) and the run ends ``TimedOut`` without a
    retry.

    Args:
        command: Bash script text: one command or several lines.
        cwd: Working directory (default: the flow run's).
        env: Extra environment variables for the command.
        timeout_seconds: Longest a single attempt may run.
        retries: Further attempts after a non-zero exit.
        retry_delay_seconds: Wait between attempts.

    Returns:
        ``exit_code`` (0), ``output`` (the last lines), ``lines`` (all lines written) and
        ``duration_seconds``. A failure ends the run Failed with the exit code and the last output line
        in the message.

    Example:
        ```python
        from atlasflow.flows.shell_job import shell_job

        result = shell_job("pg_dump reporting > /backups/reporting.sql", timeout_seconds=3600)
        print(result["exit_code"], result["output"][-1:])
        ```
    """
    if timeout_seconds <= 0:
        raise ConfigurationError("timeout_seconds must be > 0")
    if retries < 0:
        raise ConfigurationError("retries must be >= 0")
    environment = {str(k): str(v) for k, v in (env or {}).items()}
    runner = run_command.with_options(retries=retries, retry_delay_seconds=retry_delay_seconds)
    state = runner(command, cwd, environment, float(timeout_seconds), return_state=True)
    outcome = state.result(raise_on_failure=False)
    if isinstance(outcome, ShellTimeout):
        _publish("timed out", outcome.tail)
        get_run_logger().error("%s", outcome)
        return Failed(name="TimedOut", message=str(outcome))
    if isinstance(outcome, ShellCommandFailed):
        _publish(f"exit code {outcome.exit_code}", outcome.tail)
        raise outcome
    if isinstance(outcome, BaseException):
        raise outcome
    _publish("exit code 0", outcome["output"])
    return outcome


def _publish(verdict: str, tail: list[str]) -> None:
    """The last lines as an artifact (indented: output cannot break out of the code block)."""
    lines = "\n".join("    " + line for line in tail) or "    (no output)"
    create_markdown_artifact(
        f"# Shell job: {verdict}\n\nLast {len(tail)} line(s) of output:\n\n{lines}\n",
        key="shell-job-output",
        description=f"shell job: {verdict}",
    )
