"""Every Jira field type rendered as a cell, Cloud (v3, ADF) and Data Center (v2, wiki markup) alike."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from atlasflow.formats.jira_values import MAX_CELL_CHARS, Link, adf_text, cap, duration, render, text

CF = "com.atlassian.jira.plugin.system.customfieldtypes:"


def system(kind: str, fid: str, items: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind, "system": fid}
    if items:
        schema["items"] = items
    return schema


def custom(kind: str, ctype: str, items: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind, "custom": ctype, "customId": 10100}
    if items:
        schema["items"] = items
    return schema


def doc(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"type": "doc", "version": 1, "content": list(blocks)}


def para(*inline: Any) -> dict[str, Any]:
    return {"type": "paragraph", "content": [{"type": "text", "text": i} if isinstance(i, str) else i for i in inline]}


def item(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"type": "listItem", "content": list(blocks)}


USER_CLOUD = {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Alice Anders", "active": True}
USER_DC = {"name": "alice", "key": "JIRAUSER10002", "displayName": "Alice Anders", "active": True}

DESCRIPTION_ADF = doc(
    {"type": "heading", "attrs": {"level": 2}, "content": [{"type": "text", "text": "Goal"}]},
    para("Ship ", {"type": "text", "text": "checkout", "marks": [{"type": "strong"}]}, {"type": "hardBreak"}, "now"),
    {
        "type": "bulletList",
        "content": [
            item(para("first")),
            item(para("second"), {"type": "orderedList", "content": [item(para("nested"))]}),
        ],
    },
    {"type": "orderedList", "attrs": {"order": 3}, "content": [item(para("three")), item(para("four"))]},
    {"type": "codeBlock", "attrs": {"language": "python"}, "content": [{"type": "text", "text": "x = 1\nprint(x)"}]},
    para(
        "ask ",
        {"type": "mention", "attrs": {"id": "5b10", "text": "@Alice Anders"}},
        " ",
        {"type": "emoji", "attrs": {"shortName": ":rocket:", "text": "🚀"}},
        " see ",
        {"type": "text", "text": "the docs", "marks": [{"type": "link", "attrs": {"href": "https://example.com/d"}}]},
        " or ",
        {"type": "text", "text": "https://x.test", "marks": [{"type": "link", "attrs": {"href": "https://x.test"}}]},
        " ",
        {"type": "text", "text": "run()", "marks": [{"type": "code"}]},
    ),
    {
        "type": "table",
        "content": [
            {
                "type": "tableRow",
                "content": [
                    {"type": "tableHeader", "content": [para("Env")]},
                    {"type": "tableHeader", "content": [para("Owner")]},
                ],
            },
            {
                "type": "tableRow",
                "content": [
                    {"type": "tableCell", "content": [para("prod")]},
                    {"type": "tableCell", "content": [para("ops")]},
                ],
            },
        ],
    },
    {
        "type": "mediaSingle",
        "content": [{"type": "media", "attrs": {"id": "abc", "type": "file", "collection": "", "alt": "screen.png"}}],
    },
    {"type": "blockquote", "content": [para("quoted")]},
    {
        "type": "taskList",
        "content": [{"type": "taskItem", "attrs": {"state": "DONE"}, "content": [{"type": "text", "text": "done it"}]}],
    },
)
DESCRIPTION_TEXT = "\n".join(
    [
        "Goal",
        "Ship checkout",
        "now",
        "• first",
        "• second",
        "  1. nested",
        "3. three",
        "4. four",
        "x = 1",
        "print(x)",
        "ask @Alice Anders 🚀 see the docs (https://example.com/d) or https://x.test run()",
        "Env | Owner",
        "prod | ops",
        "[attachment: screen.png]",
        "> quoted",
        "☑ done it",
    ]
)


def test_adf_renders_every_construct_as_readable_text() -> None:
    assert adf_text(DESCRIPTION_ADF) == DESCRIPTION_TEXT
    assert render(DESCRIPTION_ADF, system("string", "description")) == DESCRIPTION_TEXT


def test_dc_wiki_markup_stays_as_it_is() -> None:
    wiki = "h2. Goal\n* first\n* second\n{code}x = 1{code} [~alice]"
    assert render(wiki, system("string", "description")) == wiki
    assert render(wiki, custom("string", CF + "textarea")) == wiki


SPRINT_DC = (
    "com.atlassian.greenhopper.service.sprint.Sprint@14b1c359[id=7,rapidViewId=3,state=ACTIVE,"
    "name=Sprint 13, the big one,startDate=2026-01-05T10:00:00.000Z,endDate=2026-01-19T10:00:00.000Z,"
    "completeDate=<null>,activatedDate=2026-01-05T10:00:00.000Z,sequence=7,goal=ship,autoStartStop=false,"
    "synced=false]"
)
CLOUD_SPRINTS = [
    {
        "id": 6,
        "name": "Sprint 12",
        "state": "closed",
        "boardId": 3,
        "goal": "",
        "startDate": "2025-12-22T10:00:00.000Z",
    },
    {"id": 7, "name": "Sprint 13", "state": "active", "boardId": 3, "goal": "ship"},
]

# (field, schema, value as Cloud v3 sends it, value as Data Center v2 sends it, expected cell)
CASES: list[tuple[str, dict[str, Any], Any, Any, Any]] = [
    ("description", system("string", "description"), doc(para("a"), para("b")), "a\nb", "a\nb"),
    ("environment", system("string", "environment"), doc(para("macOS 15")), "macOS 15", "macOS 15"),
    (
        "fixVersions",
        system("array", "fixVersions", "version"),
        [{"id": "1", "name": "1.0", "released": True}, {"id": "2", "name": "1.1", "released": False}],
        [{"id": "1", "name": "1.0", "released": True}, {"id": "2", "name": "1.1", "released": False}],
        "1.0, 1.1",
    ),
    (
        "components",
        system("array", "components", "component"),
        [{"id": "1", "name": "API"}],
        [{"id": "1", "name": "API"}],
        "API",
    ),
    ("labels", system("array", "labels", "string"), ["backend", "ux"], ["backend", "ux"], "backend, ux"),
    ("no labels", system("array", "labels", "string"), [], [], None),
    (
        "select",
        custom("option", CF + "select"),
        {"value": "Platform", "id": "10100"},
        {"value": "Platform", "id": "10100"},
        "Platform",
    ),
    (
        "multiselect",
        custom("array", CF + "multiselect", "option"),
        [{"value": "iOS", "id": "1"}, {"value": "Android", "id": "2"}],
        [{"value": "iOS", "id": "1"}, {"value": "Android", "id": "2"}],
        "iOS, Android",
    ),
    (
        "cascading",
        custom("option-with-child", CF + "cascadingselect"),
        {"value": "EMEA", "id": "1", "child": {"value": "Berlin", "id": "2"}},
        {"value": "EMEA", "id": "1", "child": {"value": "Berlin", "id": "2"}},
        "EMEA / Berlin",
    ),
    ("assignee", system("user", "assignee"), USER_CLOUD, USER_DC, "Alice Anders"),
    (
        "multi user",
        custom("array", CF + "multiuserpicker", "user"),
        [USER_CLOUD, {**USER_CLOUD, "displayName": "Bob Brandt"}],
        [USER_DC, {**USER_DC, "displayName": "Bob Brandt"}],
        "Alice Anders, Bob Brandt",
    ),
    (
        "group",
        custom("group", CF + "grouppicker"),
        {"name": "jira-devs", "groupId": "g1"},
        {"name": "jira-devs"},
        "jira-devs",
    ),
    ("sprint", custom("array", "com.pyxis.greenhopper.jira:gh-sprint", "json"), CLOUD_SPRINTS, [SPRINT_DC], None),
    (
        "resolution",
        system("resolution", "resolution"),
        {"id": "1", "name": "Done", "description": "Work done"},
        {"id": "1", "name": "Done"},
        "Done",
    ),
    (
        "status category",
        system("statusCategory", "statusCategory"),
        {"id": 3, "key": "done", "name": "Done"},
        {"id": 3, "key": "done", "name": "Done"},
        "Done",
    ),
    ("priority", system("priority", "priority"), {"id": "2", "name": "High"}, {"id": "2", "name": "High"}, "High"),
    (
        "security",
        system("securitylevel", "security"),
        {"id": "10000", "name": "Internal", "description": "staff"},
        {"id": "10000", "name": "Internal"},
        "Internal",
    ),
    (
        "time tracking",
        system("timetracking", "timetracking"),
        {"originalEstimate": "1w", "remainingEstimate": "3d 4h", "timeSpent": "2d", "originalEstimateSeconds": 144000},
        {"originalEstimate": "1w", "remainingEstimate": "3d 4h", "timeSpent": "2d"},
        "Estimated 1w · Remaining 3d 4h · Logged 2d",
    ),
    ("original estimate", system("number", "timeoriginalestimate"), 100800, 100800, "3d 4h"),
    ("time spent", system("number", "timespent"), 5400, 5400, "1h 30m"),
    ("aggregate spent", system("number", "aggregatetimespent"), 30411840, 30411840, "211w 7h 44m"),
    ("votes", system("votes", "votes"), {"votes": 3, "hasVoted": False}, {"votes": 3, "hasVoted": False}, 3),
    (
        "watchers",
        system("watches", "watches"),
        {"watchCount": 2, "isWatching": True},
        {"watchCount": 2, "isWatching": True},
        2,
    ),
    (
        "progress",
        system("progress", "progress"),
        {"progress": 3600, "total": 7200, "percent": 50},
        {"progress": 3600, "total": 7200, "percent": 50},
        50,
    ),
    (
        "comments",
        system("comments-page", "comment"),
        {
            "comments": [
                {"author": USER_CLOUD, "body": doc(para("first")), "created": "2026-01-05T10:15:30.000+0000"},
                {
                    "author": {**USER_CLOUD, "displayName": "Bob Brandt"},
                    "body": doc(para("Looks ", {"type": "mention", "attrs": {"text": "@Alice Anders"}})),
                    "created": "2026-01-07T14:02:00.000+0100",
                },
            ],
            "total": 2,
            "maxResults": 2,
            "startAt": 0,
        },
        {
            "comments": [
                {"author": USER_DC, "body": "first", "created": "2026-01-05T10:15:30.000+0000"},
                {
                    "author": {**USER_DC, "displayName": "Bob Brandt"},
                    "body": "Looks @Alice Anders",
                    "created": "2026-01-07T14:02:00.000+0100",
                },
            ],
            "total": 2,
            "maxResults": 2,
            "startAt": 0,
        },
        "2 comments; last by Bob Brandt on 2026-01-07 13:02 UTC: Looks @Alice Anders",
    ),
    (
        "no comments",
        system("comments-page", "comment"),
        {"comments": [], "total": 0},
        {"comments": [], "total": 0},
        None,
    ),
    (
        "worklog",
        system("array", "worklog", "worklog"),
        {
            "startAt": 0,
            "maxResults": 20,
            "total": 25,
            "worklogs": [
                {
                    "author": USER_CLOUD,
                    "started": "2026-01-06T09:00:00.000+0000",
                    "timeSpent": "3h",
                    "timeSpentSeconds": 10800,
                    "comment": doc(para("pairing")),
                },
            ],
        },
        {
            "startAt": 0,
            "maxResults": 20,
            "total": 25,
            "worklogs": [
                {
                    "author": USER_DC,
                    "started": "2026-01-06T09:00:00.000+0000",
                    "timeSpent": "3h",
                    "timeSpentSeconds": 10800,
                    "comment": "pairing",
                },
            ],
        },
        "25 worklogs; last by Alice Anders on 2026-01-06 09:00 UTC: 3h (pairing)",
    ),
    (
        "attachments",
        system("array", "attachment", "attachment"),
        [{"id": "1", "filename": "trace.log", "size": 10}, {"id": "2", "filename": "screen.png", "size": 20}],
        [{"id": "1", "filename": "trace.log", "size": 10}, {"id": "2", "filename": "screen.png", "size": 20}],
        "2: trace.log, screen.png",
    ),
    (
        "issue links",
        system("array", "issuelinks", "issuelinks"),
        [
            {
                "type": {"name": "Blocks", "inward": "is blocked by", "outward": "blocks"},
                "outwardIssue": {"key": "DEMO-4"},
            },
            {
                "type": {"name": "Blocks", "inward": "is blocked by", "outward": "blocks"},
                "inwardIssue": {"key": "DEMO-7"},
            },
        ],
        [
            {
                "type": {"name": "Blocks", "inward": "is blocked by", "outward": "blocks"},
                "outwardIssue": {"key": "DEMO-4"},
            },
            {
                "type": {"name": "Blocks", "inward": "is blocked by", "outward": "blocks"},
                "inwardIssue": {"key": "DEMO-7"},
            },
        ],
        "blocks DEMO-4; is blocked by DEMO-7",
    ),
    (
        "sub-tasks",
        system("array", "subtasks", "issuelinks"),
        [{"key": "DEMO-3"}, {"key": "DEMO-5"}],
        [{"key": "DEMO-3"}, {"key": "DEMO-5"}],
        "DEMO-3, DEMO-5",
    ),
    (
        "parent",
        {"type": "issuelink", "system": "parent"},
        {"id": "1", "key": "DEMO-1", "fields": {"summary": "x"}},
        {"id": "1", "key": "DEMO-1"},
        "DEMO-1",
    ),
    ("story points", custom("number", CF + "float"), 5.0, 5.0, 5.0),
    ("due date", system("date", "duedate"), "2026-03-28", "2026-03-28", date(2026, 3, 28)),
    ("date picker", custom("date", CF + "datepicker"), "1850-01-02", "1850-01-02", date(1850, 1, 2)),
    (
        "resolved",
        system("datetime", "resolutiondate"),
        "2026-01-05T10:15:30.000+0100",
        "2026-01-05T10:15:30.000+0100",
        datetime(2026, 1, 5, 9, 15, 30, tzinfo=UTC),
    ),
    (
        "url",
        custom("string", CF + "url"),
        "https://example.com/spec?a=1",
        "https://example.com/spec?a=1",
        Link("https://example.com/spec?a=1", "https://example.com/spec?a=1"),
    ),
    ("not a url", custom("string", CF + "url"), "javascript:alert(1)", "javascript:alert(1)", "javascript:alert(1)"),
    (
        "project",
        system("project", "project"),
        {"id": "1", "key": "DEMO", "name": "Demo project"},
        {"id": "1", "key": "DEMO", "name": "Demo project"},
        "Demo project",
    ),
    (
        "team",
        custom("team", "com.atlassian.jira.plugin.system.customfieldtypes:atlassian-team"),
        {"id": "t-1", "name": "Platform", "title": "Platform"},
        None,
        "Platform",
    ),
    ("epic link", custom("any", "com.pyxis.greenhopper.jira:gh-epic-link"), None, "DEMO-1", "DEMO-1"),
    (
        "unknown object",
        {"type": "any", "custom": "com.acme:thing"},
        {"self": "https://x", "rating": 4, "scale": "stars"},
        {"rating": 4, "scale": "stars"},
        "rating: 4; scale: stars",
    ),
    ("unknown shape, no schema", {}, {"value": "Gold"}, {"value": "Gold"}, "Gold"),
]


@pytest.mark.parametrize("mode", ["cloud", "datacenter"])
@pytest.mark.parametrize(("name", "schema", "cloud", "dc", "expected"), CASES, ids=[c[0] for c in CASES])
def test_every_field_type_as_a_cell(
    name: str, schema: dict[str, Any], cloud: Any, dc: Any, expected: Any, mode: str
) -> None:
    value = cloud if mode == "cloud" else dc
    if name == "sprint":
        expected = "Sprint 12, Sprint 13" if mode == "cloud" else "Sprint 13, the big one"
    if value is None:
        assert render(None, schema) is None
        return
    cell = render(value, schema)
    assert cell == expected
    assert type(cell) is type(expected)
    assert "{" not in text(value, schema) and "'" not in text(value, schema)  # never a repr


def test_long_text_is_cut_within_excels_limit_with_a_visible_note() -> None:
    long = "é" * 20_000 + "🚀" * 10_000
    cell = render(doc(para(long)), system("string", "description"))
    assert isinstance(cell, str)
    assert len(cell.encode("utf-16-le")) // 2 <= MAX_CELL_CHARS
    assert cell.endswith("characters in Jira, the first 32,767 shown]") and "cut: 40,000" in cell
    assert cap("short") == "short"


def test_durations_as_jira_shows_them() -> None:
    assert duration(0) == "0m"
    assert duration(60) == "1m"
    assert duration(8 * 3600) == "1d"
    assert duration(5 * 8 * 3600 + 3600 + 120) == "1w 1h 2m"


def test_text_of_typed_cells() -> None:
    assert text("2026-01-05T10:15:30.000+0000", system("datetime", "created")) == "2026-01-05 10:15 UTC"
    assert text(None) == ""
    assert text(3.0, custom("number", CF + "float")) == "3"
