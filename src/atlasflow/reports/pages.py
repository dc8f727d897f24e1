"""What an export keeps of each Jira issue, read straight from the body of a search or bulk-fetch page.

A page of 1,000 issues with the export's eight fields is about 2.6 MB of JSON, most of it what no row
shows (avatar URLs, status categories, the parent's own fields). Decoding all of it and trimming
afterwards costs the fetch threads some 35 ms of CPU per page under one GIL: at 100,000 issues that,
not the network, was the wall. Here the page is decoded against a schema of only what the walk and the
rows read (msgspec skips every other key without building it), and the small values issues repeat
(types, statuses, priorities, people) are shared, so an export holds about a kilobyte per issue.

Fields rendered as extra columns are kept exactly as Jira sent them.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Sequence
from typing import Any, Generic, TypedDict, TypeVar

import msgspec

F = TypeVar("F")


class _IssueType(TypedDict, total=False):
    name: str | None
    subtask: bool | None
    hierarchyLevel: int | None


class _Named(TypedDict, total=False):
    name: str | None


class _Person(TypedDict, total=False):
    displayName: str | None
    name: str | None
    accountId: str | None


class _Keyed(TypedDict):
    key: str


class _LinkType(TypedDict, total=False):
    name: str | None
    inward: str | None
    outward: str | None


class _Link(TypedDict, total=False):
    type: _LinkType
    inwardIssue: _Keyed
    outwardIssue: _Keyed


class _Issue(TypedDict, Generic[F]):
    id: str
    key: str
    fields: F


class _Page(TypedDict, Generic[F], total=False):
    """What is read of a Cloud ``search/jql`` or ``issue/bulkfetch`` page or a Data Center ``search`` page."""

    issues: list[_Issue[F]]
    issueErrors: list[dict[str, Any]]
    nextPageToken: str | None
    isLast: bool
    startAt: int
    maxResults: int
    total: int


#: What is read of the fields the walk and the rows use; any other field is kept whole.
KEPT: dict[str, Any] = {
    "issuetype": _IssueType | None,
    "status": _Named | None,
    "priority": _Named | None,
    "assignee": _Person | None,
    "parent": _Keyed | None,
    "subtasks": list[_Keyed] | None,
    "issuelinks": list[_Link] | None,
}
#: Kept values that many issues repeat: one shared dict per distinct value.
SHARED = ("issuetype", "status", "priority", "assignee")


class PageReader:
    """Decodes pages of issues (Cloud ``search/jql`` and ``issue/bulkfetch``, Data Center ``search``).

    Args:
        fields: The field ids the pages were asked for.
        whole: Of those, the ones kept exactly as Jira sent them (rendered as columns).
    """

    def __init__(self, fields: Sequence[str], whole: Collection[str] = ()) -> None:
        spec = {name: Any if name in whole else KEPT.get(name, Any) for name in fields}
        issue_fields = TypedDict("issue_fields", spec, total=False)  # type: ignore[misc]  # made per export
        self._decoder: msgspec.json.Decoder[dict[str, Any]] = msgspec.json.Decoder(_Page[issue_fields])
        self._shared = [name for name in SHARED if name in spec and name not in whole]
        self._parent = "parent" in spec and "parent" not in whole
        self._values: dict[tuple[Any, ...], dict[str, Any]] = {}

    def __call__(self, body: bytes) -> dict[str, Any]:
        """The page, each issue holding only what is kept.

        Raises:
            ValueError: When the body is not JSON, or not a page of issues (naming where it differs).
        """
        page: dict[str, Any] = self._decoder.decode(body)
        for issue in page.get("issues", ()):
            self._share(issue)
        return page

    def _share(self, issue: dict[str, Any]) -> None:
        issue["key"] = sys.intern(issue["key"])
        fields = issue["fields"]
        for name in self._shared:
            value = fields.get(name)
            if value is not None:
                fields[name] = self._values.setdefault((name, *value.items()), value)  # atomic: scalars only
        if self._parent and fields.get("parent"):
            fields["parent"]["key"] = sys.intern(fields["parent"]["key"])
