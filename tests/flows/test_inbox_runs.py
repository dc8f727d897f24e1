"""The job inbox touches only the runs it started for a row, counts only the runs it created, and never
writes a Run ID beside parameters its run did not get (issue 27: item 1 and the inbox's low items)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterIdempotencyKey
from prefect.client.schemas.objects import FlowRun
from prefect.states import Running

from atlasflow.flows.job_inbox import (
    DEFAULT_JOB_MAP,
    NOT_OWNED,
    idempotency_key,
    parse_request,
    request_text,
    run_job_inbox,
    start,
)
from atlasflow.formats.confluence_tables import merge_rows, read_table
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.confluence import JOB_INBOX_ID
from atlasflow.sandbox.core import Faults


def rows_of(sb: Sandbox) -> dict[str, dict[str, str]]:
    assert sb.confluence is not None
    return {r["Request"]: r for r in read_table(sb.confluence.page(JOB_INBOX_ID).body, 0).rows}


def set_rows(sb: Sandbox, rows: list[dict[str, Any]], by: str = "Demo Admin") -> None:
    assert sb.confluence is not None
    body = merge_rows(sb.confluence.page(JOB_INBOX_ID).body, 0, "Request", rows).storage
    sb.confluence.edit_page(JOB_INBOX_ID, body, by=by)


def read_run(run_id: UUID | str) -> FlowRun:
    with get_client(sync_client=True) as client:
        return client.read_flow_run(UUID(str(run_id)))


def test_a_run_id_the_inbox_did_not_start_for_the_row_is_neither_read_capped_nor_cancelled(
    cloud_site: Sandbox, inbox_deployments: dict[str, UUID]
) -> None:
    # Somebody else's run, long running (its id is visible in posts, the Results table, the UI).
    with get_client(sync_client=True) as client:
        foreign = client.create_flow_run_from_deployment(
            inbox_deployments["jira-export/demo-export"], tags=["requester:Somebody Else"]
        )
        client.set_flow_run_state(foreign.id, Running(), force=True)
    first = run_job_inbox(page_id=JOB_INBOX_ID)  # REQ-1 and REQ-2 start: the inbox's own runs
    own = rows_of(cloud_site)["REQ-2"]["Run ID"]
    # A page editor writes the foreign id into a new row and into REQ-1 (replacing REQ-1's own run id).
    set_rows(
        cloud_site,
        [
            {"Request": "REQ-X", "Job": "jira_export", "Parameters": "{}", "Run ID": str(foreign.id)},
            {"Request": "REQ-1", "Run ID": str(foreign.id)},
            {"Request": "REQ-2", "Run ID": own.upper()},  # the same id spelt otherwise: still not the cell's
        ],
        by="Mallory Editor",
    )

    result = run_job_inbox(page_id=JOB_INBOX_ID, max_run_minutes=0)

    rows = rows_of(cloud_site)
    assert first["started"] == 2
    assert rows["REQ-X"]["State"] == rows["REQ-1"]["State"] == NOT_OWNED
    assert rows["REQ-2"]["State"] == NOT_OWNED
    assert result["not_owned"] == 3 and result["started"] == 0
    run = read_run(foreign.id)
    assert run.state is not None and run.state.name == "Running", "a run the inbox did not start was touched"
    assert "Somebody Else" not in cloud_site.confluence.page(JOB_INBOX_ID).body  # type: ignore[union-attr]


def test_the_inbox_caps_its_own_run_found_by_key(cloud_site: Sandbox, inbox_deployments: dict[str, UUID]) -> None:
    run_job_inbox(page_id=JOB_INBOX_ID)
    own = rows_of(cloud_site)["REQ-1"]["Run ID"]
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(UUID(own), Running(), force=True)

    run_job_inbox(page_id=JOB_INBOX_ID, max_run_minutes=0)

    assert rows_of(cloud_site)["REQ-1"]["State"] in (
        "Cancelling · requested by Demo Admin",
        "Cancelled · requested by Demo Admin",
    )
    state = read_run(own).state
    assert state is not None and state.name in ("Cancelling", "Cancelled")


def test_an_inbox_run_counts_only_the_runs_it_created(cloud_site: Sandbox, inbox_deployments: dict[str, UUID]) -> None:
    # Another inbox run, at the same time, created REQ-1's run and has not written its id yet.
    other = start(cloud_site.confluence_url, JOB_INBOX_ID, parse_request(rows_of(cloud_site)["REQ-1"], DEFAULT_JOB_MAP))
    assert other.created

    result = run_job_inbox(page_id=JOB_INBOX_ID)

    assert rows_of(cloud_site)["REQ-1"]["Run ID"] == other.run_id
    assert result["started"] == 1 and result["already_started"] == 1  # REQ-2 created here, REQ-1 found


def test_a_row_edited_while_its_run_is_started_keeps_no_run_id_for_other_parameters(
    cloud_site: Sandbox, inbox_deployments: dict[str, UUID]
) -> None:
    assert cloud_site.confluence is not None
    before = idempotency_key(
        cloud_site.confluence_url, JOB_INBOX_ID, "REQ-1", request_text(rows_of(cloud_site)["REQ-1"])
    )
    # The inbox's first page write (REQ-1's Run ID) is held; meanwhile the requester edits REQ-1.
    cloud_site.state.faults = Faults(stall=f"PUT /wiki/api/v2/pages/{JOB_INBOX_ID}", stall_seconds=2)
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(run_job_inbox, page_id=JOB_INBOX_ID)
        assert cloud_site.state.faults.stalled.wait(60)
        set_rows(cloud_site, [{"Request": "REQ-1", "Parameters": '{"root_tickets": ["DEMO-2"]}'}])
        first = running.result(timeout=120)

    row = rows_of(cloud_site)["REQ-1"]
    assert row["Run ID"] == "" and row["Parameters"] == '{"root_tickets": ["DEMO-2"]}'
    assert first["withdrawn"] == 1 and first["started"] == 1  # REQ-2
    withdrawn = _runs_keyed(before)
    assert len(withdrawn) == 1 and withdrawn[0].state is not None
    assert withdrawn[0].state.name in ("Cancelling", "Cancelled")

    second = run_job_inbox(page_id=JOB_INBOX_ID)  # the row as it now reads starts

    run = read_run(rows_of(cloud_site)["REQ-1"]["Run ID"])
    assert second["started"] == 1 and run.parameters["root_tickets"] == ["DEMO-2"]


def _runs_keyed(key: str) -> list[FlowRun]:
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            flow_run_filter=FlowRunFilter(idempotency_key=FlowRunFilterIdempotencyKey(any_=[key]))
        )
