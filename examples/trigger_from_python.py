"""Trigger atlasflow jobs from Python: call the flows directly, or start their deployments.

    python examples/trigger_from_python.py             # direct calls, against an in-process sandbox
    python examples/trigger_from_python.py --deployed  # deployments: a Prefect server, the deployments
                                                       # of prefect.yaml and a worker must be running

A direct call runs the flow in this process (a Prefect run is still recorded: with no PREFECT_API_URL set,
Prefect starts a temporary local server, which takes 10-25 s). A deployment run is executed by a worker;
``run_deployment(..., timeout=0)`` only creates it and returns at once.
"""

from __future__ import annotations

import argparse
import os

from prefect.deployments import run_deployment

from atlasflow.demo import JIRA_BLOCK, MATTERMOST_BLOCK, save_sandbox_blocks
from atlasflow.flows.jira_export import jira_export
from atlasflow.flows.jira_maintenance import jira_bulk_update, jira_delete_issues, jira_permissions_check
from atlasflow.runtime.notify import NOTIFIER_ENV
from atlasflow.sandbox.app import Sandbox


def direct() -> None:
    """Every job once against a sandbox of this process; each step prints one ``what: outcome`` line."""
    with Sandbox(mode="cloud") as sb:
        # Blocks named sandbox-* pointing at the sandbox; end-of-run notifications to the sandbox's Mattermost.
        save_sandbox_blocks(sb)
        os.environ[NOTIFIER_ENV] = f"mattermost-webhook/{MATTERMOST_BLOCK}"

        # A required permission missing -> the run fails naming it; here everything is granted.
        needed = ["BROWSE_PROJECTS", "EDIT_ISSUES", "DELETE_ISSUES"]
        granted = jira_permissions_check("OPS", needed, jira_block=JIRA_BLOCK)["permissions"]
        print("permissions:", ", ".join(f"{p}={'granted' if ok else 'missing'}" for p, ok in granted.items()))

        # Bulk update: field names or ids -> the values Jira's REST API takes (a sprint by its id, a priority by
        # name). Dry run first (the default), then for real.
        jql = "project = OPS AND priority = Low"
        fields = {"Priority": {"name": "Medium"}, "Sprint": 14}
        preview = jira_bulk_update(jql, fields, jira_block=JIRA_BLOCK)
        print(
            "bulk update, dry run:",
            f"would update {preview['to_update']} of {preview['matched']}; refusal: {preview['would_refuse']}",
        )
        done = jira_bulk_update(jql, fields, dry_run=False, max_issues=10, jira_block=JIRA_BLOCK)
        print("bulk update:", f"updated {done['updated']} of {done['matched']}, failed {done['failed']}")

        # Delete: the dry run says how many issues match; a real run needs exactly that confirm_count.
        jql = "key in (OPS-8, OPS-9, OPS-10)"  # OPS-8 and its two sub-tasks
        plan = jira_delete_issues(jql, confirm_count=0, jira_block=JIRA_BLOCK)
        print("delete, dry run:", f"{plan['matched']} matched; refusal: {plan['would_refuse']}")
        gone = jira_delete_issues(jql, confirm_count=plan["matched"], dry_run=False, jira_block=JIRA_BLOCK)
        print("delete:", f"deleted {gone['deleted']}, failed {gone['failed']}")

        # return_state=True hands back the final state instead of raising when the run fails.
        state = jira_delete_issues(
            "key = OPS-1", confirm_count=1, dry_run=False, jira_block=JIRA_BLOCK, return_state=True
        )
        print("delete OPS-1:", state.name, "-", state.message)  # refused: sub-tasks the JQL does not match

        # Files land in the reports folder ($ATLASFLOW_REPORTS_ROOT, by default ./reports).
        export = jira_export(root_tickets=["DEMO-1"], output_dir="reports/examples", jira_block=JIRA_BLOCK)
        print("workbook:", export["path"])


def deployed() -> None:
    from read_results import show, wait_for  # examples/read_results.py, beside this file

    # Fire and forget: timeout=0 returns the new run (state Scheduled) without waiting for it.
    export = run_deployment("jira-export/demo-export", parameters={"root_tickets": ["DEMO-1"]}, timeout=0)
    print("started", export.name, export.id, export.state_name)

    runs = [
        export,
        run_deployment(
            "jira-permissions-check/permissions-check",
            parameters={"project_key": "OPS", "permissions": ["BROWSE_PROJECTS", "EDIT_ISSUES"]},
            timeout=0,
        ),
        run_deployment(
            "jira-bulk-update/bulk-update",
            parameters={
                "jql": "project = OPS AND priority = Low",
                "fields": {"Priority": {"name": "Medium"}},
                "dry_run": True,
            },
            timeout=0,
        ),
        run_deployment(
            "jira-delete-issues/guarded-delete",
            parameters={"jql": "key in (OPS-8, OPS-9, OPS-10)", "confirm_count": 3, "dry_run": True},
            timeout=0,
        ),
    ]
    # Then wait for each and read it back through the API (state, message, table artifacts).
    for run in runs:
        show(wait_for(run.id))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deployed", action="store_true", help="start the deployments instead of calling flows")
    if parser.parse_args().deployed:
        deployed()
    else:
        direct()
