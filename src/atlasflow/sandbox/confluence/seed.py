"""The pages the Confluence stand-in starts with (storage format, shaped after the real samples).

Demo site (:meth:`ConfluenceSite.demo`): space ``REP`` "Reporting" (id 98305); every page is a child of the
space home page, so ``ancestors`` holds one entry. Ids are stable (module constants):

* 557057 ``HOME_PAGE_ID`` "Reporting Home": text; the parent of all the others.
* 557058 ``EXPORT_SUMMARY_ID`` "Jira export summary": an info panel; table 0 under "Exported tickets" (Key,
  Summary, Status, Assignee; a status macro in every Status cell, a user link); table 1 under "Totals by
  status" (Status, Count); table 2 inside an ``expand`` macro (Field, Source); ``&nbsp;``; a code macro whose
  CDATA holds ``<table> not a table </table>``.
* 557059 ``JOB_RESULTS_ID`` "Job results": heading "Results" over a header-only table Run ID, Job, State,
  Started, Duration, Summary.
* 557060 ``JOB_INBOX_ID`` "Job inbox": table Request, Job, Parameters, Priority, Run ID, State with REQ-1
  ``jira_export`` ``{"root_tickets": ["DEMO-1"]}`` high; REQ-2 ``confluence_table_sync``
  ``{"table": 0, "key_column": "Key", "rows": [...]}`` (adds DAN to the page its deployment names) medium;
  REQ-3 unknown job ``send_fax`` ``{}`` low; REQ-4
  ``jira_export`` with broken JSON, medium. Run ID and State are empty.
* 557061 ``TEAM_ROSTER_ID`` "Team roster": table Key, Name, Role, Team with keys ALI, BOB, CAR.
* 557062 ``NO_TABLES_ID`` "No tables here": headings, paragraphs, a list.
* 557063 ``BROKEN_PAGE_ID`` "Broken page": a table with an unclosed ``<td>`` and no ``</table>``.
* 557064 ``RESTRICTED_PAGE_ID`` "Salary bands (restricted)": a table; only demo@example.com may view or edit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from atlasflow.sandbox.confluence.users import user_ref
from atlasflow.sandbox.core import Mode

if TYPE_CHECKING:
    from atlasflow.sandbox.confluence.pages import ConfluenceSite

SPACE_KEY = "REP"
SPACE_NAME = "Reporting"
SPACE_ID = 98305

HOME_PAGE_ID = "557057"
EXPORT_SUMMARY_ID = "557058"
JOB_RESULTS_ID = "557059"
JOB_INBOX_ID = "557060"
TEAM_ROSTER_ID = "557061"
NO_TABLES_ID = "557062"
BROKEN_PAGE_ID = "557063"
RESTRICTED_PAGE_ID = "557064"


def build_demo(site: ConfluenceSite, mode: Mode) -> None:
    """Fill the empty ``site`` with the space and pages listed in the module docstring."""
    site.add_space(SPACE_KEY, SPACE_NAME)
    ref = user_ref(mode, "demo@example.com")
    home = site.add_page("Reporting Home", _HOME)
    pages = [
        ("Jira export summary", _export_summary(ref), None),
        ("Job results", _JOB_RESULTS, None),
        ("Job inbox", _JOB_INBOX, None),
        ("Team roster", _TEAM_ROSTER, None),
        ("No tables here", _NO_TABLES, None),
        ("Broken page", _BROKEN, None),
        ("Salary bands (restricted)", _RESTRICTED, frozenset({"demo@example.com"})),
    ]
    for title, body, only in pages:
        site.add_page(title, body, viewers=only, editors=only, parent_id=home)


def _table(local_id: str, widths: list[int], header: list[str], rows: list[list[str]]) -> str:
    cols = "".join(f'<col style="width: {w}.0px;" />' for w in widths)
    head = "".join(f"<th><p><strong>{h}</strong></p></th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f'<table data-layout="default" ac:local-id="{local_id}"><colgroup>{cols}</colgroup>'
        f"<tbody><tr>{head}</tr>{body}</tbody></table>"
    )


def _cell(content: str) -> str:
    return "<p />" if not content else content if content.startswith("<p") else f"<p>{content}</p>"


def _macro(name: str, macro_id: str, inner: str) -> str:
    opening = f'<ac:structured-macro ac:name="{name}" ac:schema-version="1" ac:macro-id="{macro_id}">'
    return f"{opening}{inner}</ac:structured-macro>"


def _parameter(name: str, value: str) -> str:
    return f'<ac:parameter ac:name="{name}">{value}</ac:parameter>'


def _status(title: str, colour: str, macro_id: str) -> str:
    return (
        "<p>" + _macro("status", macro_id, _parameter("title", title) + _parameter("colour", colour)) + "</p>"
    )


_HOME = (
    "<p>Reports written by the atlasflow jobs. Each child page is kept up to date by one job; "
    "edit the tables only where a page says so.</p>"
)


def _export_summary(user_ref: str) -> str:
    tickets = _table(
        "5f0c2a7e-3b1d-4c8a-9e61-0a4d2b7c9e10",
        [120, 340, 140, 160],
        ["Key", "Summary", "Status", "Assignee"],
        [
            [
                "DEMO-1",
                "Quarterly export",
                _status("In Progress", "Blue", "0b7e7f54-6a1e-4c3b-8d52-1f0e9a3c2b01"),
                f"<p><ac:link>{user_ref}</ac:link></p>",
            ],
            [
                "DEMO-2",
                "Fix &amp; verify totals",
                _status("Done", "Green", "0b7e7f54-6a1e-4c3b-8d52-1f0e9a3c2b02"),
                "<p>Unassigned</p>",
            ],
            [
                "DEMO-3",
                "Export hierarchy&nbsp;to Excel",
                _status("To Do", "Grey", "0b7e7f54-6a1e-4c3b-8d52-1f0e9a3c2b03"),
                "<p>Unassigned</p>",
            ],
        ],
    )
    totals = _table(
        "8c1d4e2f-6a7b-4c9d-8e0f-1a2b3c4d5e6f",
        [200, 120],
        ["Status", "Count"],
        [["To Do", "1"], ["In Progress", "1"], ["Done", "1"]],
    )
    fields = _table(
        "c3d2e1f0-9a8b-4c7d-8e6f-5a4b3c2d1e0f",
        [180, 300],
        ["Field", "Source"],
        [["Key", "issue key"], ["Summary", "fields.summary"], ["Status", "fields.status.name"]],
    )
    info = _macro(
        "info",
        "bb3c4149-8cc9-4d4b-9402-87f8b6c7918e",
        "<ac:rich-text-body><p>This page is written by the <strong>jira_export</strong> job. "
        "Edit the text, not the tables.</p></ac:rich-text-body>",
    )
    expand = _macro(
        "expand",
        "4a1b2c3d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        _parameter("title", "Exported fields") + f"<ac:rich-text-body>{fields}</ac:rich-text-body>",
    )
    code = _macro(
        "code",
        "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
        _parameter("language", "xml")
        + "<ac:plain-text-body><![CDATA[<table> not a table </table>]]></ac:plain-text-body>",
    )
    return (
        f"<h1>Jira export summary</h1>{info}<p />"
        f"<h2>Exported tickets</h2>{tickets}<p>&nbsp;</p>"
        f"<h2>Totals by status</h2>{totals}"
        f"<h2>Details</h2>{expand}"
        f'<p>Last export:&nbsp;<time datetime="2026-11-27" /></p>{code}'
    )


_JOB_RESULTS = (
    "<p>Finished job runs, one row per run, written by the reporting flow.</p>"
    "<h2>Results</h2>"
    + _table(
        "d4e5f6a7-b8c9-4d0e-8f1a-2b3c4d5e6f70",
        [300, 160, 110, 190, 100, 400],
        ["Run ID", "Job", "State", "Started", "Duration", "Summary"],
        [],
    )
)

_JOB_INBOX = (
    "<p>Add a row to request a job run. The inbox flow starts it and fills in Run ID and State.</p>"
    + _table(
        "e5f6a7b8-c9d0-4e1f-8a2b-3c4d5e6f7a81",
        [90, 200, 360, 90, 300, 110],
        ["Request", "Job", "Parameters", "Priority", "Run ID", "State"],
        [
            ["REQ-1", "jira_export", '{"root_tickets": ["DEMO-1"]}', "high", "", ""],
            [
                "REQ-2",
                "confluence_table_sync",
                '{"table": 0, "key_column": "Key", '
                '"rows": [{"Key": "DAN", "Name": "Dan", "Role": "QA", "Team": "Payments"}]}',
                "medium",
                "",
                "",
            ],
            ["REQ-3", "send_fax", "{}", "low", "", ""],
            ["REQ-4", "jira_export", '{"root_tickets": ["DEMO-2"', "medium", "", ""],
        ],
    )
)

_TEAM_ROSTER = "<p>Who is on the reporting team.</p>" + _table(
    "f6a7b8c9-d0e1-4f2a-8b3c-4d5e6f7a8b92",
    [90, 220, 200, 160],
    ["Key", "Name", "Role", "Team"],
    [
        ["ALI", "Alice Andersen", "Data engineer", "Platform"],
        ["BOB", "Bob Brown", "Analyst", "Finance"],
        ["CAR", "Carla Costa", "Team lead", "Platform"],
    ],
)

_NO_TABLES = (
    "<h2>About</h2><p>This page has text only: no table for a job to read or write.</p>"
    "<ul><li><p>First point</p></li><li><p>Second point</p></li></ul>"
    '<p>Contact: <a href="mailto:reporting@example.com">reporting@example.com</a></p>'
)

_BROKEN = (
    "<h2>Broken</h2><p>Storage damaged by a bad import: a cell and the table are never closed.</p>"
    "<table><tbody><tr><th><p>Key</p></th><th><p>Value</p></th></tr>"
    "<tr><td><p>A-1</p><td><p>unclosed cell</p></tr>"
    "<tr><td><p>A-2</p></td><td><p>second</p></td></tr></tbody>"
    "<p>Text after the table</p>"
)

_RESTRICTED = "<p>Restricted to Demo Admin.</p>" + _table(
    "a7b8c9d0-e1f2-4a3b-8c4d-5e6f7a8b9ca3",
    [120, 160],
    ["Band", "Range"],
    [["B1", "40k-50k"], ["B2", "50k-65k"]],
)
