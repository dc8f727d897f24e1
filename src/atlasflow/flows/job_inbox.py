"""Jobs requested from outside: a Confluence table of job requests, each started once on its priority's queue.

The inbox table has the columns ``Request`` (a unique id), ``Job`` (a job type), ``Parameters`` (a JSON
object), ``Priority`` (high, medium or low; empty = medium), ``Run ID`` and ``State``. For every row without
a Run ID the flow starts the deployment mapped to its job type on the queue of its priority and writes the
run id and the run's state back into the row right away. A row with a Run ID is never started again; its
State is refreshed from the run. A row that cannot be started (unknown job, bad JSON, unknown priority,
parameters the deployment refuses) keeps no Run ID and gets the reason in State; after the requester fixes
it, the next inbox run starts it.

The page is a trust boundary: whoever may edit it can ask, but only for what the job's allow-list
(:mod:`atlasflow.flows.inbox_rules`) lets a request set, within its caps; credentials, file paths, target
pages and destructive switches come from the deployment unless the operator's job map allows one. At most
``max_starts`` requests start per inbox run, and a requested run still running after ``max_run_minutes`` is
cancelled by the next inbox run. The requester, the author of the page version from which the row has
read as it does now without a gap (from the page history), is recorded on the run (tags
``requester:<name>`` and ``requester-id:<account>``) and in State. Before a run starts the inbox composes
its Jira scope from the projects the row names (:mod:`atlasflow.flows.inbox_rules`), and checks that the
job is open to those projects, that the requester may browse each of them (asked of Jira), and the caps in
issues and in requests per requester per day (:mod:`atlasflow.flows.inbox_access`).

Exactly once: the flow run is created with the idempotency key ``inbox-<site>-<page id>-<request>-<text>``
(``<text>`` a hash of what the row asks for). A crash (or a failed page write) between starting a run and
writing its id back leaves the row without a Run ID; the next inbox run asks for the same key and Prefect
returns the run already created instead of a second one, whose id is then written (counted as started
before, not as started: an inbox run counts only the runs it created). The row is read again right before
each write: a row edited or removed meanwhile gets nothing written, and a run just started for its earlier
text is cancelled, so a Run ID never stands beside parameters its run did not get.

Runs are found by key, never by the Run ID cell: an inbox editor can write any run's id there, so a cell
naming a run the inbox did not start for that row (and text) gets "Run ID does not belong to this request";
that run is neither read into the page, capped nor cancelled. A request id with a Run ID is not started
again; to run a request again, add a row with a new id.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, cast

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NONE
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterIdempotencyKey, FlowRunFilterTags
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.states import Cancelling
from pydantic import BaseModel
from pydantic import Field as PydanticField

from atlasflow.blocks import ConfluenceCredentials
from atlasflow.blocks.credentials import jira_client
from atlasflow.clients.confluence import ConfluenceClient
from atlasflow.clients.http import json_or_none
from atlasflow.errors import ConfigurationError
from atlasflow.flows.confluence_table_sync import fetch_page
from atlasflow.flows.inbox_access import (
    MAX_ISSUES,
    MAX_REQUESTS_PER_DAY,
    Gate,
    Rejected,
    RowHistory,
    requester_tag,
    site_hash,
)
from atlasflow.flows.inbox_rules import RequestRefused, Scope, admit
from atlasflow.formats.confluence_tables import merge_rows, read_table
from atlasflow.runtime.failures import one_line_failures
from atlasflow.runtime.hooks import job_hooks
from atlasflow.runtime.params import PageId, page_key, table_ref
from atlasflow.runtime.tasks import transient_only

#: Job type (as written in the Job column) → deployment ``flow-name/deployment-name``. Only what is listed
#: can be requested: destructive jobs (bulk update, delete) and shell commands are left out on purpose,
#: since anyone who may edit the page could request them; pass ``job_map`` to choose another set.
DEFAULT_JOB_MAP: dict[str, str] = {
    "jira_export": "jira-export/demo-export",
    "confluence_table_sync": "confluence-table-sync/table-sync",
    "read_confluence_table": "read-confluence-table/read-table",
    "report_results": "report-results/hourly-report",
    "jira_permissions_check": "jira-permissions-check/permissions-check",
    "pipeline": "atlasflow-pipeline/pipeline",
}
#: Priority → work queue of the ``atlasflow`` pool (the queues ``atlasflow setup`` creates).
PRIORITY_QUEUES = {"high": "high", "medium": "medium", "low": "low"}
DEFAULT_PRIORITY = "medium"
KEY = "Request"
COLUMNS = [KEY, "Job", "Parameters", "Priority", "Run ID", "State"]
WRITTEN = ["Run ID", "State"]
INBOX_TAG = "atlasflow-inbox"


#: Requests one inbox run starts at most; the rest wait for the next run.
MAX_STARTS = 10
#: A requested run still running after this many minutes is cancelled by the next inbox run.
MAX_RUN_MINUTES = 120.0


REQUESTER_TAG = "requester:"
#: Tag prefix naming the call that created a run, so an inbox run counts only the runs it created.
STARTER_TAG = "inbox-start:"
#: A row's State when its Run ID cell names a run the inbox did not start for that row.
NOT_OWNED = "Run ID does not belong to this request"


@dataclass(frozen=True)
class Request:
    """A valid job request: what to start, with what, where (and, once known, who asked)."""

    request: str
    deployment: str
    parameters: dict[str, Any]
    queue: str
    requester: str = ""
    asked: tuple[str, ...] = ()
    """What the row asked for when it was read (:func:`request_text`): the run is keyed on it."""
    scope: Scope = field(default_factory=Scope)
    """What the request reads in Jira: checked before its run starts."""
    requester_id: str = ""
    """The requester's account (Cloud account id, Data Center username)."""


def request_text(row: dict[str, str]) -> tuple[str, ...]:
    """What a row asks for (the cells a requester writes, not those the inbox writes)."""
    return tuple(row.get(column, "").strip() for column in COLUMNS if column not in WRITTEN)


class InboxJob(BaseModel):
    """A job the inbox may start: its deployment, and parameters the operator lets the page set.

    Attributes:
        deployment: ``flow-name/deployment-name``.
        allow: Parameters a request may set beyond the job's allow-list (:mod:`atlasflow.flows.inbox_rules`),
            e.g. ``["output_dir"]``; still checked by the deployment and the flow.
        projects: The only Jira projects a request of this job may name; ``None`` = any the requester
            may browse.
        jql_functions: JQL functions a request may call beyond the date functions, e.g. ``["linkedIssues"]``.
    """

    deployment: str
    allow: list[str] = PydanticField(default_factory=list)
    projects: list[str] | None = None
    jql_functions: list[str] = PydanticField(default_factory=list)


def idempotency_key(site_url: str, page_id: str, request: str, asked: tuple[str, ...]) -> str:
    """The flow-run idempotency key of a request: one run per request id, request text and inbox page, ever.

    The Confluence site is part of it (as a short hash of its URL), so that two sites with the same page
    ids on one Prefect server do not share requests; so is a hash of what the row asks for
    (:func:`request_text`), so that a run belongs to the request as it read when the run was started.
    """
    text = hashlib.sha256(json.dumps(asked).encode()).hexdigest()[:12]
    return f"{_legacy_key(site_url, page_id, request)}-{text}"


def _legacy_key(site_url: str, page_id: str, request: str) -> str:
    """The key of runs started before keys named the request's text (still owned by their request id)."""
    return f"inbox-{site_hash(site_url)}-{page_id}-{request}"


def parse_request(row: dict[str, str], job_map: Mapping[str, str | InboxJob]) -> Request:
    """Validate one table row.

    Raises:
        Rejected: Unknown job type, parameters that are not a JSON object or not requestable (outside the
            job's allow-list or its bounds, or naming a project the job is not open to), unknown priority.
    """
    job = row.get("Job", "").strip().lower().replace("-", "_").replace(" ", "_")
    jobs = inbox_jobs(job_map)
    if job not in jobs:
        known = ", ".join(sorted(jobs)) or "none"
        raise Rejected(f"unknown job {row.get('Job', '')!r} (known: {known})")
    text = row.get("Parameters", "").strip()
    try:
        parameters = json.loads(text) if text else {}
    except json.JSONDecodeError as exc:
        raise Rejected(f"Parameters are not valid JSON: {exc}") from None
    if not isinstance(parameters, dict):
        raise Rejected(f"Parameters must be a JSON object, not {type(parameters).__name__}")
    priority = row.get("Priority", "").strip().lower() or DEFAULT_PRIORITY
    if priority not in PRIORITY_QUEUES:
        raise Rejected(f"unknown priority {row.get('Priority', '')!r} (use {', '.join(PRIORITY_QUEUES)})")
    entry = jobs[job]
    try:
        admitted = admit(job, parameters, frozenset(entry.allow), frozenset(f.lower() for f in entry.jql_functions))
    except RequestRefused as exc:
        raise Rejected(str(exc)) from None
    open_to = [p.upper() for p in entry.projects] if entry.projects is not None else None
    closed = [p for p in admitted.scope.projects if open_to is not None and p not in open_to]
    if closed:
        raise Rejected(
            f"project {closed[0]} is not open to inbox requests of {job} (open: {', '.join(open_to or []) or 'none'})"
        )
    queue, asked = PRIORITY_QUEUES[priority], request_text(row)
    return Request(row[KEY], entry.deployment, admitted.parameters, queue, asked=asked, scope=admitted.scope)


def inbox_jobs(job_map: Mapping[str, str | InboxJob] | Mapping[str, Any] | None) -> dict[str, InboxJob]:
    """The job map with every entry as an :class:`InboxJob` (a plain string is a deployment)."""
    jobs: dict[str, InboxJob] = {}
    for name, entry in (job_map if job_map is not None else DEFAULT_JOB_MAP).items():
        if isinstance(entry, str):
            entry = InboxJob(deployment=entry)
        elif isinstance(entry, dict):
            entry = InboxJob.model_validate(entry)
        jobs[name.strip().lower()] = entry
    return jobs


@dataclass(frozen=True)
class WriteBack:
    """Cells the inbox writes into one row (``Run ID`` and/or ``State``), and the row as the inbox read it.

    Written only if the row still reads so when the page is written: a requester's edit made meanwhile (or
    a removed row) wins, and the inbox acts on the row as it now reads on its next run.
    """

    request: str
    asked: tuple[str, ...]
    run_id: str
    cells: dict[str, str]

    def still_reads_so(self, rows: Mapping[str, dict[str, str]]) -> bool:
        row = rows.get(self.request)
        return row is not None and request_text(row) == self.asked and row["Run ID"].strip() == self.run_id


@task(
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=transient_only,
    cache_policy=NONE,
    timeout_seconds=300,
)
def write_rows(client: ConfluenceClient, page_id: str, table: int | str, backs: list[WriteBack]) -> list[WriteBack]:
    """Write Run ID/State into the rows that still read as the inbox read them; return the others.

    The rows are re-read from the page as it is at the write (and again after a concurrent edit).
    """

    def edit(page: Any) -> tuple[str | None, list[WriteBack]]:
        rows = {r.get(KEY, ""): r for r in read_table(page.body, table).rows}
        keep = [b for b in backs if b.still_reads_so(rows)]
        merged = merge_rows(page.body, table, KEY, [{KEY: b.request, **b.cells} for b in keep], columns=WRITTEN)
        return (merged.storage if merged.changed else None), [b for b in backs if b not in keep]

    return client.edit_page(page_id, edit, message="atlasflow job inbox").result


@dataclass(frozen=True)
class Started:
    """A request's flow run as :func:`start` found it."""

    run_id: str
    state: str
    created: bool
    """Whether this call created the run (``False``: an earlier inbox run had, under the same key)."""


def start(site_url: str, page_id: str, request: Request) -> Started:
    """Create the request's flow run, or get the one created before under its idempotency key.

    Raises:
        Rejected: The deployment does not exist.
    """
    marker = f"{STARTER_TAG}{uuid.uuid4()}"
    try:
        flow_run: FlowRun = run_deployment(  # type: ignore[assignment]  # sync call of an async-dispatched function
            request.deployment,
            parameters=request.parameters,
            timeout=0,
            work_queue_name=request.queue,
            idempotency_key=idempotency_key(site_url, page_id, request.request, request.asked),
            tags=[INBOX_TAG, marker, *([f"{REQUESTER_TAG}{request.requester}"] if request.requester else [])]
            + ([requester_tag(site_url, request.requester_id)] if request.requester_id else []),
            as_subflow=False,
        )
    except ObjectNotFound:
        raise Rejected(f"no deployment {request.deployment!r} on this Prefect server") from None
    state = (flow_run.state.name if flow_run.state else None) or "Scheduled"
    return Started(str(flow_run.id), shown_state(state, _requester_of(flow_run.tags)), marker in flow_run.tags)


def withdraw(run_id: str) -> None:
    """Cancel a run just started for a row that was edited or removed before its Run ID was written."""
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run_id, Cancelling(message="its inbox row changed before the run was recorded"))


def shown_state(state: str, requester: str) -> str:
    """A row's State: the run's state, and who requested it."""
    return f"{state} · requested by {requester}" if requester else state


def _requester_of(tags: list[str]) -> str:
    return next((t.removeprefix(REQUESTER_TAG) for t in tags if t.startswith(REQUESTER_TAG)), "")


def current_states(
    site_url: str, page_id: str, rows: list[dict[str, str]], max_run_minutes: float | None = None
) -> dict[str, str]:
    """The State to show in each row that has a Run ID, by request id.

    Only a run the inbox started for that very row counts: found by the row's idempotency key and the inbox
    tag, never by the id written in the cell. A cell naming any other run gets :data:`NOT_OWNED` and that run
    is neither read into the page nor touched. An owned run still running after ``max_run_minutes`` is
    cancelled first (the time cap of inbox requests).
    """
    keys = {
        key: row[KEY]
        for row in rows
        for key in (
            idempotency_key(site_url, page_id, row[KEY], request_text(row)),
            _legacy_key(site_url, page_id, row[KEY]),
        )
    }
    owned: dict[str, FlowRun] = {}
    listed = list(keys)
    with get_client(sync_client=True) as client:
        for at in range(0, len(listed), 200):
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    idempotency_key=FlowRunFilterIdempotencyKey(any_=listed[at : at + 200]),
                    tags=FlowRunFilterTags(all_=[INBOX_TAG]),
                )
            )
            owned.update({str(r.id): r for r in runs if r.idempotency_key in keys})
        states: dict[str, str] = {}
        for row in rows:
            run = owned.get(row["Run ID"].strip())
            if run is None or keys[str(run.idempotency_key)] != row[KEY]:
                states[row[KEY]] = NOT_OWNED
                continue
            if max_run_minutes is not None:
                run = _capped(client, run, max_run_minutes)
            if run.state and run.state.name:
                states[row[KEY]] = shown_state(run.state.name, _requester_of(run.tags))
    return states


def _capped(client: SyncPrefectClient, run: FlowRun, max_run_minutes: float) -> FlowRun:
    """``run``, cancelled if it has been running longer than the cap."""
    if not (run.state and run.state.is_running() and run.start_time):
        return run
    minutes = (datetime.now(UTC) - run.start_time).total_seconds() / 60
    if minutes <= max_run_minutes:
        return run
    reason = f"ran {minutes:.0f} min, longer than the inbox's cap of {max_run_minutes:g} min"
    client.set_flow_run_state(run.id, Cancelling(message=reason))
    return client.read_flow_run(run.id)


def started_nothing(result: dict[str, Any]) -> bool:
    """An inbox run that started no request and rejected no new one: nothing to post (``changes`` policy)."""
    return not result.get("started") and not result.get("newly_rejected")


@flow(name="run-job-inbox", **job_hooks(did_nothing=started_nothing))
@one_line_failures
def run_job_inbox(
    page_id: PageId,
    table: int | str = 0,
    confluence_block: str = "confluence",
    job_map: dict[str, str | InboxJob] | None = None,
    max_starts: int = MAX_STARTS,
    max_run_minutes: float | None = MAX_RUN_MINUTES,
    jira_block: str = "jira",
    max_issues: int | None = MAX_ISSUES,
    max_requests_per_day: int | None = MAX_REQUESTS_PER_DAY,
) -> dict[str, Any]:
    """Start every new job request of a Confluence inbox table, once, on its priority's queue.

    Args:
        page_id: The page holding the inbox table.
        table: The table: its index on the page (0 = first) or the heading above it.
        confluence_block: Name of a saved ``ConfluenceCredentials`` block.
        job_map: Job type → deployment (``flow-name/deployment-name``), or an :class:`InboxJob` as a dict
            (``{"deployment": ..., "allow": [parameter, ...], "projects": [key, ...], "jql_functions": [...]}``)
            to let the page set more, or to open the job to listed projects only; replaces
            :data:`DEFAULT_JOB_MAP`.
        max_starts: Requests started at most by this run; later rows wait for the next run.
        max_run_minutes: A requested run still running this long is cancelled (checked each inbox run);
            ``None`` = no time cap.
        jira_block: ``JiraCredentials`` block the inbox asks Jira with: whether a requester may browse the
            projects of a request (its account needs the global permission *Administer Jira*), where root
            tickets are, how many issues a scope holds.
        max_issues: A request whose scope holds more issues (approximately, counted before it starts) is
            refused; ``None`` = no cap.
        max_requests_per_day: A requester's requests started in the last 24 hours at most; ``None`` = no cap.

    Returns:
        Counts: ``started`` (runs this inbox run created), ``already_started`` (rows whose run an earlier
        inbox run created), ``rejected`` (reason written into State; ``newly_rejected`` of them with a
        reason not shown before), ``not_started`` (an error that may pass: the row is tried again next
        time), ``refreshed`` (State updated), ``waiting`` (over ``max_starts``), ``withdrawn`` (the row
        changed while its run was being started: the run is cancelled) and ``not_owned`` (the Run ID
        cell names a run the inbox did not start for that row).

    Raises:
        RuntimeError: Some request could not be started for a reason that may pass (after the other rows
            were handled), so the run ends Failed and is noticed.
    """
    logger = get_run_logger()
    jobs = inbox_jobs(job_map)
    page_id = page_key(page_id)
    table = table_ref(table)
    credentials = cast(ConfluenceCredentials, ConfluenceCredentials.load(confluence_block))
    client = credentials.get_client()
    gate = Gate(lambda: jira_client(jira_block), credentials.url, INBOX_TAG, max_issues, max_requests_per_day)
    counts = dict.fromkeys(
        (
            "started",
            "already_started",
            "rejected",
            "newly_rejected",
            "not_started",
            "refreshed",
            "waiting",
            "withdrawn",
            "not_owned",
        ),
        0,
    )
    log_rows: list[dict[str, str]] = []
    errors: list[str] = []
    try:
        page = fetch_page(client, page_id)
        inbox = read_table(page.body, table)
        rows = inbox.rows
        _check_table(rows, inbox.header)
        history = RowHistory(client, page_id, table, page.version, key=KEY, text=request_text)
        updates: list[WriteBack] = []
        with_ids: list[dict[str, str]] = []
        for row in rows:
            name = row[KEY]
            if not name:
                logger.warning("a row without a %s id is ignored: %s", KEY, row)
                continue
            if row["Run ID"]:
                with_ids.append(row)
                continue
            if counts["started"] >= max_starts:
                counts["waiting"] += 1
                waiting = f"Waiting: this inbox run started its cap of {max_starts} requests; a later run starts it"
                if row["State"] != waiting:
                    updates.append(_state_of(row, waiting))
                continue
            try:
                request = parse_request(row, jobs)
                requester = history.requester(row)
                gate.check(requester, request.scope, idempotency_key(credentials.url, page_id, name, request.asked))
                request = replace(request, requester=requester.name, requester_id=requester.account)
                started = start(credentials.url, page_id, request)
            except Rejected as exc:
                verdict, transient = f"Rejected: {exc}", False
            except Exception as exc:
                reason, transient = _start_error(exc)
                verdict = f"Not started (tried again next time): {reason}" if transient else f"Rejected: {reason}"
            else:
                # Written right after starting: a crash can lose the id only in this call's window, and the
                # idempotency key closes that window.
                cells = {"Run ID": started.run_id, "State": started.state}
                if write_rows(client, page_id, table, [WriteBack(name, request.asked, "", cells)]):
                    withdraw(started.run_id)
                    counts["withdrawn"] += 1
                    action = "withdrawn: the row changed before its Run ID was written"
                else:
                    counts["started" if started.created else "already_started"] += 1
                    action = f"{'started' if started.created else 'found started'} {request.deployment}"
                logger.info("request %s: %s on queue %s as run %s", name, action, request.queue, started.run_id)
                log_rows.append({"request": name, "action": action, "queue": request.queue, "run": started.run_id})
                continue
            counts["not_started" if transient else "rejected"] += 1
            if transient:
                errors.append(f"{name}: {verdict}")
            verdict = verdict[:300]
            logger.warning("request %s: %s", name, verdict)
            log_rows.append({"request": name, "action": verdict, "queue": "", "run": ""})
            if row["State"] != verdict:
                updates.append(_state_of(row, verdict))
                counts["newly_rejected"] += 0 if transient else 1
        states = current_states(credentials.url, page_id, with_ids, max_run_minutes) if with_ids else {}
        for row in with_ids:
            current = states.get(row[KEY])
            counts["already_started" if current != NOT_OWNED else "not_owned"] += 1
            if current and row["State"] != current:
                updates.append(_state_of(row, current))
                counts["refreshed"] += 1
        if updates:
            write_rows(client, page_id, table, updates)
    finally:
        client.close()
        gate.close()
    create_table_artifact(
        log_rows or [{"request": "", "action": "nothing new", "queue": "", "run": ""}],
        key="job-inbox",
        description=f"inbox page {page_id}: {counts['started']} started, {counts['rejected']} rejected, "
        f"{counts['not_started']} not started, {counts['already_started']} started before",
    )
    if errors:
        raise RuntimeError(
            f"{len(errors)} request(s) could not be started (tried again next run): " + "; ".join(errors)[:1000]
        )
    return counts


def _state_of(row: dict[str, str], state: str) -> WriteBack:
    """The write-back of ``state`` into a row as it was read."""
    return WriteBack(row[KEY], request_text(row), row["Run ID"].strip(), {"State": state})


def _check_table(rows: list[dict[str, str]], header: list[str]) -> None:
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ConfigurationError(
            f"the inbox table has no column(s) {', '.join(missing)} (it needs {', '.join(COLUMNS)})"
        )
    duplicates = sorted(k for k, n in Counter(r[KEY] for r in rows if r[KEY]).items() if n > 1)
    if duplicates:
        raise ConfigurationError(f"duplicate {KEY} ids in the inbox table: {', '.join(duplicates)}; make each unique")


def _start_error(exc: Exception) -> tuple[str, bool]:
    """(reason, whether it may pass) for an error starting a run."""
    if isinstance(exc, PrefectHTTPStatusError):
        return _detail(exc), exc.response.status_code >= 500 or exc.response.status_code == 429
    return f"{type(exc).__name__}: {exc}", True


def _detail(exc: PrefectHTTPStatusError) -> str:
    body = json_or_none(exc.response)
    if body is None:
        return exc.response.text[:300]
    detail = body.get("detail", body) if isinstance(body, dict) else body
    return " ".join(str(detail)[:2000].split())[:300]
