"""Benchmark the streaming Excel export against XlsxWriter (constant_memory) and pandas + openpyxl.

Usage::

    python bench/bench_excel.py [--rows 100000] [--seed 7] [--repeat 2]

The rows are Jira issues as the REST API returns them (Cloud v3: Atlassian Document descriptions,
sprint objects, versions, components, options, users, time tracking seconds, comment pages), and
every method renders them with :func:`atlasflow.formats.jira_values.render` (the renderer is part of
each timing), then writes the same sheets: "Root Issues" and "Child Issues" under a frozen bold
header with an autofilter, keys as links to the issue, dates as typed cells. Each method runs in its
own subprocess, which generates the same deterministic issues itself and reports its wall time and
its own peak RSS, so the memory figure is that of the method including its data; the methods run
``--repeat`` times, interleaved, and each one's fastest run counts (a slow spell of a shared machine
then hits them all, and none is judged by it). Prints the
figures, the ratios and PASS/FAIL against the targets: ours at least 2x faster than XlsxWriter's
constant_memory mode, at least 5x faster than pandas + openpyxl and at most 1/4 of the latter's
peak memory; and diffing two snapshots of all rows within 10% of our export's time.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from atlasflow.formats.excel_limits import MAX_LINKS_PER_SHEET
from atlasflow.formats.jira_values import Link, name_of, parse_jira_time, renderer
from atlasflow.formats.records import ExportRow

XLSXWRITER_TARGET = 2.0
PANDAS_TARGET = 5.0
MEMORY_TARGET = 0.25
DIFF_TARGET = 0.10
BROWSE = "https://acme.atlassian.net/browse/"
CF = "com.atlassian.jira.plugin.system.customfieldtypes:"
SPRINT_TYPE = "com.pyxis.greenhopper.jira:gh-sprint"

#: Extra columns: title -> (field id, schema as /rest/api/3/field lists it).
EXTRA_FIELDS: dict[str, tuple[str, dict[str, Any]]] = {
    "Description": ("description", {"type": "string", "system": "description"}),
    "Story Points": ("customfield_10016", {"type": "number", "custom": f"{CF}float"}),
    "Sprint": ("customfield_10020", {"type": "array", "items": "json", "custom": SPRINT_TYPE}),
    "Labels": ("labels", {"type": "array", "items": "string", "system": "labels"}),
    "Components": ("components", {"type": "array", "items": "component", "system": "components"}),
    "Due date": ("duedate", {"type": "date", "system": "duedate"}),
    "Team": ("customfield_10001", {"type": "option", "custom": f"{CF}select"}),
    "Fix versions": ("fixVersions", {"type": "array", "items": "version", "system": "fixVersions"}),
    "Original estimate": ("timeoriginalestimate", {"type": "number", "system": "timeoriginalestimate"}),
    "Comment": ("comment", {"type": "comments-page", "system": "comment"}),
}  # fmt: skip
EXTRA_COLUMNS = tuple(EXTRA_FIELDS)  # 12 base columns + 10 extra = 22 columns
ROOT_HEADER = ("Key", "Summary", "Type", "Status", "Priority", "Assignee", "Created", "Updated")
CHILD_HEADER = (*ROOT_HEADER, "Parent", "Root", "Level", "Relation")

_VOCABULARY = (
    "api gateway timeout retry login page checkout cart payment invoice report export import "
    "dashboard widget cache database migration index query slow memory leak crash mobile ios "
    "android push notification email template locale translation accessibility contrast "
    "keyboard search filter sort pagination upload download permission role admin audit log "
    "metrics alert incident rollback deploy pipeline flaky test coverage refactor cleanup"
)
_WORDS = _VOCABULARY.split()
_STATUSES = ("To Do", "In Progress", "In Review", "Blocked", "Done", "Won't Do")
_TYPES = ("Story", "Task", "Bug", "Sub-task", "Spike")
_PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest", None)
_COMPONENTS = ("Backend", "Frontend", "Data")
_RELATIONS = ("sub-task", "child", "epic child", "blocks", "relates to", "is cloned by")
_ASSIGNEES = tuple(
    f"{first} {last}"
    for first in ("Ada", "Bo", "Chen", "Dana", "Eli", "Femi", "Gus")
    for last in ("Lovelace", "Novak", "Okafor", "Ruiz", "Sato", "Weber", "Young")
)


def _user(name: str | None) -> dict[str, Any] | None:
    if name is None:
        return None
    return {"accountId": "5b10" + str(abs(hash(name)) % 10**8), "displayName": name, "active": True}


def _adf(rng: random.Random) -> dict[str, Any]:
    words = " ".join(rng.choices(_WORDS, k=rng.randrange(8, 40)))
    items = [
        {"type": "listItem", "content": [{"type": "paragraph", "content": [{"type": "text", "text": w}]}]}
        for w in rng.sample(_WORDS, rng.randrange(0, 4))
    ]
    content: list[dict[str, Any]] = [{"type": "paragraph", "content": [{"type": "text", "text": words}]}]
    if items:
        content.append({"type": "bulletList", "content": items})
    return {"type": "doc", "version": 1, "content": content}


def _jira_time(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}.000+0000"


POOL_SIZE = 997
"""Distinct issue payloads the rows cycle through: building a payload is not what is measured, rendering is."""


def _payload(rng: random.Random, itype: str) -> dict[str, Any]:
    """The fields of one issue as Jira Cloud's v3 API sends them."""
    created = datetime(2023, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(0, 800_000))
    author = _user(rng.choice(_ASSIGNEES))
    comments = [
        {"author": author, "body": _adf(rng), "created": _jira_time(created + timedelta(hours=n))}
        for n in range(rng.randrange(0, 3))
    ]
    sprint = rng.randrange(1, 60)
    return {
        "summary": " ".join(rng.choices(_WORDS, k=rng.randrange(4, 16))).capitalize(),
        "issuetype": {"name": itype, "id": "10000" if itype == "Epic" else "10001"},
        "status": {"name": rng.choice(_STATUSES), "id": "3"},
        "priority": (lambda p: {"name": p, "id": "2"} if p else None)(rng.choice(_PRIORITIES)),
        "assignee": _user(rng.choice((*_ASSIGNEES, None))),
        "created": _jira_time(created),
        "updated": _jira_time(created + timedelta(minutes=rng.randrange(0, 100_000))),
        "description": _adf(rng),
        "customfield_10016": rng.choice((1, 2, 3, 5, 8, 13, None)),
        "customfield_10020": [{"id": sprint, "name": f"Sprint {sprint}", "state": "active", "boardId": 3}],
        "labels": rng.sample(_WORDS, rng.randrange(0, 4)),
        "components": [{"id": "1", "name": c} for c in rng.sample(_COMPONENTS, rng.randrange(0, 3))],
        "duedate": (created + timedelta(days=rng.randrange(1, 90))).date().isoformat(),
        "customfield_10001": {"value": rng.choice(("Atlas", "Boreal", "Cirrus", "Delta")), "id": "10100"},
        "fixVersions": [{"id": "1", "name": f"{rng.randrange(1, 5)}.{rng.randrange(0, 20)}.0"}],
        "timeoriginalestimate": rng.randrange(1, 80) * 1800,
        "comment": {"comments": comments, "total": len(comments), "maxResults": len(comments), "startAt": 0},
    }  # fmt: skip


def generate_issues(count: int, seed: int) -> Iterator[tuple[dict[str, Any], str | None, str | None, int, str | None]]:
    """Yield ``count`` deterministic (issue as Jira sends it, parent, root, level, relation): trees of one
    root (an Epic) and ~9 descendants, their fields taken in turn from :data:`POOL_SIZE` payloads."""
    rng = random.Random(seed)
    epics = [_payload(rng, "Epic") for _ in range(POOL_SIZE)]
    others = [_payload(rng, rng.choice(_TYPES)) for _ in range(POOL_SIZE)]
    tree: list[tuple[str, int]] = []  # (key, level) of the current root's issues
    root = ""
    for number in range(1, count + 1):
        key = f"DEMO-{number}"
        if not tree or rng.random() < 0.1:
            root, tree = key, [(key, 0)]
            yield {"key": key, "fields": epics[number % POOL_SIZE]}, None, None, 0, None
            continue
        parent, parent_level = rng.choice(tree)
        tree.append((key, parent_level + 1))
        issue = {"key": key, "fields": others[number % POOL_SIZE]}
        yield issue, parent, root, parent_level + 1, rng.choice(_RELATIONS)


def generate_rows(count: int, seed: int) -> Iterator[ExportRow]:
    """The issues of :func:`generate_issues` rendered as export rows, the way the export renders them."""
    renderers = {title: (fid, renderer(schema)) for title, (fid, schema) in EXTRA_FIELDS.items()}
    for issue, parent, root, level, relation in generate_issues(count, seed):
        fields = issue["fields"]
        yield ExportRow(
            key=issue["key"],
            summary=fields["summary"],
            type=name_of(fields["issuetype"]),
            status=name_of(fields["status"]),
            priority=name_of(fields["priority"]) or None,
            assignee=name_of(fields["assignee"]) or None,
            created=parse_jira_time(fields["created"]),
            updated=parse_jira_time(fields["updated"]),
            parent=parent,
            root=root,
            level=level,
            relation=relation,
            extra={title: render(fields.get(fid)) for title, (fid, render) in renderers.items()},
        )


def _cells(row: ExportRow, child: bool) -> list[Any]:
    """A row's values in column order (naive UTC datetimes, as Excel stores them)."""
    values: list[Any] = [
        row.key, row.summary, row.type, row.status, row.priority, row.assignee, _naive(row.created), _naive(row.updated)
    ]  # fmt: skip
    if child:
        values += [row.parent, row.root, row.level, row.relation]
    return values + [_naive(row.extra.get(title)) for title in EXTRA_COLUMNS]


def _naive(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None)
    return str(value) if isinstance(value, Link) else value


def _run_ours(count: int, seed: int, out: Path) -> None:
    from atlasflow.reports.sheets import write_export_workbook

    write_export_workbook(
        out,
        generate_rows(count, seed),
        extra_columns=EXTRA_COLUMNS,
        query="project = DEMO AND issuetype = Epic (roots) and their descendants",
        generated_at=datetime.now(UTC),
        browse_url=BROWSE,
    )


def _run_xlsxwriter(count: int, seed: int, out: Path) -> None:
    """The same sheets with XlsxWriter in constant_memory mode (rows flushed as they are written)."""
    import xlsxwriter

    book = xlsxwriter.Workbook(str(out), {"constant_memory": True})
    header = book.add_format({"bold": True, "bg_color": "#DDEBF7", "bottom": 1})
    stamp = book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    day = book.add_format({"num_format": "yyyy-mm-dd"})
    link = book.add_format({"font_color": "#0563C1", "underline": 1})
    sheets = {}
    for child, name, titles in ((False, "Root Issues", ROOT_HEADER), (True, "Child Issues", CHILD_HEADER)):
        sheet = book.add_worksheet(name)
        sheet.freeze_panes(1, 0)
        sheet.write_row(0, 0, [*titles, *EXTRA_COLUMNS], header)
        sheets[child] = [sheet, 0, 0, len(titles) + len(EXTRA_COLUMNS)]  # sheet, last row, links, columns
    for row in generate_rows(count, seed):
        child = row.level > 0
        entry = sheets[child]
        sheet, number = entry[0], entry[1] + 1
        entry[1] = number
        key_columns = (0, 8, 9) if child else (0,)
        for col, value in enumerate(_cells(row, child)):
            if value is None:
                continue
            if col in key_columns and entry[2] < MAX_LINKS_PER_SHEET:
                sheet.write_url(number, col, BROWSE + value, link, value)
                entry[2] += 1
            elif isinstance(value, datetime):
                sheet.write_datetime(number, col, value, stamp)
            elif isinstance(value, date):
                sheet.write_datetime(number, col, datetime(value.year, value.month, value.day), day)
            elif isinstance(value, str):
                sheet.write_string(number, col, value)
            else:
                sheet.write_number(number, col, value)
    for sheet, last, _, columns in sheets.values():
        sheet.autofilter(0, 0, last, columns - 1)
    book.close()


def _run_pandas(count: int, seed: int, out: Path) -> None:
    import pandas as pd

    frames = {}
    for child, name, titles in ((False, "Root Issues", ROOT_HEADER), (True, "Child Issues", CHILD_HEADER)):
        rows = [_cells(row, child) for row in generate_rows(count, seed) if (row.level > 0) == child]
        frames[name] = pd.DataFrame(rows, columns=[*titles, *EXTRA_COLUMNS])
    with pd.ExcelWriter(out, engine="openpyxl") as writer:
        for name, frame in frames.items():
            frame.to_excel(writer, index=False, sheet_name=name, freeze_panes=(1, 0))


def _child(method: str, count: int, seed: int, out: Path) -> None:
    """Run one method and print its figures as JSON; imports happen before the clock starts."""
    importlib.import_module({"ours": "atlasflow.formats.excel", "xlsxwriter": "xlsxwriter"}.get(method, "pandas"))
    cpu_before, started = _cpu_seconds(), time.perf_counter()
    {"ours": _run_ours, "xlsxwriter": _run_xlsxwriter, "pandas": _run_pandas}[method](count, seed, out)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_before
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    figures = {"seconds": seconds, "cpu": cpu, "peak_mb": peak_kb / 1024, "bytes": out.stat().st_size}
    print(json.dumps(figures))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _measure(method: str, count: int, seed: int, directory: Path) -> dict[str, float]:
    out = directory / f"{method}.xlsx"
    command = [sys.executable, __file__, "--child", method, "--rows", str(count), "--seed", str(seed)]
    result = subprocess.run([*command, "--out", str(out)], check=True, capture_output=True, text=True)
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def _measure_diff(count: int, seed: int) -> tuple[float, str]:
    """Time ``diff_snapshots`` on two snapshots of ``count`` issues, ~10% of them changed."""
    from atlasflow.formats.changes import describe_changes, diff_snapshots, snapshot_of

    old = {row.key: snapshot_of(row, EXTRA_COLUMNS) for row in generate_rows(count, seed)}
    rng = random.Random(seed + 1)
    new = {key: dict(values) for key, values in old.items()}
    keys = list(new)
    for key in rng.sample(keys, count // 10):
        values = new[key]
        values["status"] = rng.choice(_STATUSES)
        if rng.random() < 0.3:
            values["assignee"] = rng.choice(_ASSIGNEES)
        if rng.random() < 0.1 and values["parent"]:
            values["parent"] = rng.choice(keys)
    for key in rng.sample(keys, count // 100):
        del new[key]
    for number in range(count + 1, count + 1 + count // 100):
        new[f"DEMO-{number}"] = dict(old[rng.choice(keys)])
    started = time.perf_counter()
    report = diff_snapshots(old, new)
    seconds = time.perf_counter() - started
    return seconds, describe_changes(report)


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each method, interleaved; the fastest counts")
    parser.add_argument("--child", choices=("ours", "xlsxwriter", "pandas"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.rows, args.seed, args.out)
        return

    started = time.perf_counter()
    roots = sum(row.level == 0 for row in generate_rows(args.rows, args.seed))
    generation = time.perf_counter() - started
    print(
        f"rows: {args.rows:,} ({roots:,} roots, {args.rows - roots:,} descendants), 22 columns; generating "
        f"the Jira payloads and rendering them takes {generation:.2f} s, included in every timing"
    )
    runs: dict[str, list[dict[str, float]]] = {"ours": [], "xlsxwriter": [], "pandas": []}
    with tempfile.TemporaryDirectory(prefix="bench-excel-") as directory:
        for _ in range(args.repeat):  # interleaved, so a slow spell of the machine hits every method
            for method, figures in runs.items():
                figures.append(_measure(method, args.rows, args.seed, Path(directory)))
    ours, writer, base = (min(figures, key=lambda f: f["seconds"]) for figures in runs.values())
    print(f"each method run {args.repeat} times, interleaved; the fastest run of each:")
    for name, figures in (
        ("ours       (formats.xlsx_stream)", ours),
        ("XlsxWriter (constant_memory)", writer),
        ("pandas     (ExcelWriter, openpyxl)", base),
    ):
        print(
            f"{name}: {figures['seconds']:.2f} s wall ({figures['cpu']:.2f} s CPU), "
            f"peak RSS {figures['peak_mb']:.0f} MB, "
            f"file {figures['bytes'] / 1e6:.1f} MB"
        )
    against_writer = writer["seconds"] / ours["seconds"]
    speedup = base["seconds"] / ours["seconds"]
    memory = ours["peak_mb"] / base["peak_mb"]
    print(
        f"vs XlsxWriter constant_memory: {against_writer:.1f}x wall, {writer['cpu'] / ours['cpu']:.1f}x CPU "
        f"(target >= {XLSXWRITER_TARGET:g}x wall) {_verdict(against_writer >= XLSXWRITER_TARGET)}"
    )
    print(
        f"vs pandas + openpyxl: {speedup:.1f}x wall, {base['cpu'] / ours['cpu']:.1f}x CPU "
        f"(target >= {PANDAS_TARGET:g}x wall) {_verdict(speedup >= PANDAS_TARGET)}"
    )
    print(
        f"memory: {memory:.2f} of pandas + openpyxl's peak (target <= {MEMORY_TARGET:g}) "
        f"{_verdict(memory <= MEMORY_TARGET)}"
    )
    diff_seconds, description = _measure_diff(args.rows, args.seed)
    fraction = diff_seconds / ours["seconds"]
    print(
        f"diff_snapshots {args.rows:,} vs {args.rows:,} ({description.split(':')[0]}): {diff_seconds:.3f} s "
        f"= {fraction:.1%} of our export (target <= {DIFF_TARGET:.0%}) {_verdict(fraction <= DIFF_TARGET)}"
    )


if __name__ == "__main__":
    main()
