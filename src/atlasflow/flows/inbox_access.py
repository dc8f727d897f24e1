"""Who asked for an inbox row, and whether they may have it: checked before the inbox starts a run.

The requester is the author of the page version in which the row's current request text first appeared
without a gap: the history is walked back from the current version while the row reads the same (Request,
Job, Parameters, Priority), so a row removed and re-added belongs to whoever re-added it, and whoever last
changed what a row asks for is its requester. The walk reads the current version and at most
:data:`MAX_HISTORY_VERSIONS` before it; a row whose text is older is refused rather than attributed to a
guess. The requester is an account (Cloud: the version's account id; Data Center: its username) with a
display name.

Before a run starts (:class:`Gate`), in this order, each refusal saying why:

1. the requester's requests today: at most ``max_requests_per_day`` runs started by the inbox for that
   account in the last 24 hours (counted from the runs' tags on the Prefect server);
2. the requester's own access: Jira is asked whether that account may browse every project in the
   request's scope (:mod:`atlasflow.clients.jira_access`; the service account needs *Administer Jira*). A
   refusal names the project, never data; where the question cannot be answered, the request is refused;
3. the root tickets lie in the named projects as Jira sees them now (a moved issue keeps its old key);
4. the issues in scope, approximately counted, are at most ``max_issues``.

The job's own project list (``InboxJob.projects``) is checked with the request's parameters, before these.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterExpectedStartTime, FlowRunFilterTags

from atlasflow.clients.confluence import ConfluenceClient
from atlasflow.clients.jira import JiraClient
from atlasflow.clients.jira_access import may_browse, projects_of
from atlasflow.errors import ApiError, ConfigurationError
from atlasflow.flows.inbox_rules import Scope
from atlasflow.formats.confluence_tables import read_table

#: Page versions one requester lookup reads at most, back from the current one.
MAX_HISTORY_VERSIONS = 100
#: Issues one request may read at most (approximate count before it starts).
MAX_ISSUES = 5000
#: Runs the inbox starts at most for one requester in 24 hours.
MAX_REQUESTS_PER_DAY = 20
#: Tag prefix naming the requester's account on a run the inbox started (:func:`requester_tag`).
REQUESTER_ID_TAG = "requester-id:"


def site_hash(site_url: str) -> str:
    """A short, stable name of a Confluence site (its URL hashed), for keys and tags on a shared server."""
    return hashlib.sha256(site_url.strip().rstrip("/").lower().encode()).hexdigest()[:8]


def requester_tag(site_url: str, account: str) -> str:
    """The tag naming a requester on the runs the inbox starts: ``requester-id:<site>:<account>``.

    Qualified by the Confluence site, since Data Center usernames are unique only within one site (and two
    sites' inboxes may share one Prefect server).
    """
    return f"{REQUESTER_ID_TAG}{site_hash(site_url)}:{account}"


RowText = Callable[[dict[str, str]], tuple[str, ...]]


class Rejected(ConfigurationError):
    """A row that cannot be started as written; the message is what the requester reads in State."""


@dataclass(frozen=True)
class Requester:
    """Who asked: ``account`` (Cloud account id, Data Center username) and the name people read."""

    account: str
    name: str


class RowHistory:
    """Who asked for each row of an inbox table, from the page's versions (each read once).

    Args:
        client: The Confluence client.
        page_id: The inbox page.
        table: The inbox table (index or heading).
        current_version: The version the rows were read from.
        key: The column that names a row.
        text: What a row asks for (the cells its requester writes).
        limit: Versions before ``current_version`` read at most per lookup.
    """

    def __init__(
        self,
        client: ConfluenceClient,
        page_id: str,
        table: int | str,
        current_version: int,
        *,
        key: str,
        text: RowText,
        limit: int = MAX_HISTORY_VERSIONS,
    ) -> None:
        self.client = client
        self.page_id = page_id
        self.table = table
        self.current = current_version
        self.key = key
        self.text = text
        self.limit = limit
        self._rows: dict[int, dict[str, tuple[str, ...]]] = {}
        self._authors: dict[int, str] = {}
        self._names: dict[str, str] = {}

    def requester(self, row: dict[str, str]) -> Requester:
        """The author of the version in which ``row`` (a row of the current version) began to read as it does.

        Raises:
            Rejected: The row reads the same in the last :attr:`limit` versions and there are older ones, or
                the version's author is not recorded.
            ApiError: A version could not be read.
        """
        name, wanted = row[self.key], self.text(row)
        first = self.current
        while first > 1 and self._row(first - 1, name) == wanted:
            first -= 1
            if self.current - first >= self.limit and first > 1:
                raise Rejected(
                    f"the row reads the same in the {self.limit} page versions before this one, so who asked cannot be "
                    "told; add the request again as a new row"
                )
        self._row(first, name)
        account = self._authors[first]
        if not account:
            raise Rejected(f"the page history does not say who wrote version {first}, which added this row")
        return Requester(account, self._name(first, account))

    def _row(self, number: int, name: str) -> tuple[str, ...] | None:
        if number not in self._rows:
            version = self.client.page_version(self.page_id, number)
            try:
                rows = {r.get(self.key, ""): self.text(r) for r in read_table(version.body, self.table).rows}
            except ValueError:  # no such table in that version
                rows = {}
            self._rows[number] = rows
            self._authors[number] = version.author
            if version.author_name:
                self._names[version.author] = version.author_name
        return self._rows[number].get(name)

    def _name(self, number: int, account: str) -> str:
        if account not in self._names:  # Cloud: versions carry account ids only
            self._names[account] = self.client.display_names([account]).get(account, "") or account
        return self._names[account]


@dataclass
class Gate:
    """The checks a request passes before its run starts (see the module docstring).

    Args:
        jira: Makes the Jira client of the service account (called once, on the first request with a scope).
        site_url: The Confluence site of the inbox page (requesters are counted per site).
        inbox_tag: The tag of every run the inbox starts.
        max_issues: Issues one request may read at most; ``None`` = no cap.
        max_requests_per_day: Runs per requester in 24 hours; ``None`` = no cap.
    """

    jira: Callable[[], JiraClient]
    site_url: str
    inbox_tag: str
    max_issues: int | None = MAX_ISSUES
    max_requests_per_day: int | None = MAX_REQUESTS_PER_DAY
    _client: JiraClient | None = field(default=None, init=False)

    def check(self, requester: Requester, scope: Scope, key: str) -> None:
        """Refuse the request of ``requester`` for ``scope`` unless every check passes.

        Args:
            requester: Who asked.
            scope: What the request reads in Jira.
            key: The request's idempotency key: its own run, if an earlier inbox run created it, is not
                counted against the daily cap.

        Raises:
            Rejected: Naming the check that failed (and the project, for access).
        """
        self._check_daily(requester, key)
        if not scope.projects:
            return
        client = self._jira()
        for project in scope.projects:
            try:
                allowed = may_browse(client, requester.account, project)
            except ApiError as exc:
                raise Rejected(
                    f"whether {requester.name} may browse Jira project {project} could not be checked, so it is "
                    f"not started ({exc})"
                ) from None
            if not allowed:
                raise Rejected(f"{requester.name} may not browse Jira project {project}")
        try:
            if scope.roots and not projects_of(client, scope.roots) <= set(scope.projects):
                raise Rejected(f"root tickets must be in {', '.join(scope.projects)}: one is not (moved?)")
            count = client.count(scope.count_jql) if scope.count_jql and self.max_issues is not None else 0
        except ApiError as exc:
            raise Rejected(f"the scope could not be checked, so it is not started ({exc})") from None
        if self.max_issues is not None and count > self.max_issues:
            raise Rejected(f"the scope holds about {count:,} issues, more than the cap of {self.max_issues:,}")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _jira(self) -> JiraClient:
        if self._client is None:
            self._client = self.jira()
        return self._client

    def _check_daily(self, requester: Requester, key: str) -> None:
        cap = self.max_requests_per_day
        if cap is None:
            return
        since = datetime.now(UTC) - timedelta(days=1)
        with get_client(sync_client=True) as prefect:
            runs = prefect.read_flow_runs(
                flow_run_filter=FlowRunFilter(
                    tags=FlowRunFilterTags(all_=[self.inbox_tag, requester_tag(self.site_url, requester.account)]),
                    expected_start_time=FlowRunFilterExpectedStartTime(after_=since),  # type: ignore[arg-type]
                ),
                limit=cap + 1,
            )
        if len([r for r in runs if r.idempotency_key != key]) >= cap:
            raise Rejected(f"{requester.name} has had {cap} inbox requests started in the last 24 hours (the cap)")
