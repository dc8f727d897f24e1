"""Jira export at real-world latency: our export against sequential token paging and the network floor.

Settings (the defaults): every request answered after 250 ms, Cloud's page caps (100 issues per
``search/jql`` page with fields, 5,000 ids per page without, ``issue/bulkfetch`` 100 issues or 1,000 when
shaped efficiently), the shared rate limit at 20 requests/s (the Prefect global concurrency limit with
slot decay that ``atlasflow setup`` creates, taken by every request), and two scopes: a 100,000-issue
project and a 20,000-issue tree (depth 4). Each site runs in a sandbox process of its own, as a real Jira
is another machine.

Printed side by side, per scope: requests and wall time of our export (fetch, rows, workbook), of the
sequential token-paging baseline (one search page after the other, as Jira's own paging suggests), and
the floor = max(longest chain of dependent requests x latency, fewest requests / rate limit). Then the
memory our export holds per issue above what the workbook writer itself needs, and the whole
``jira_export`` flow (Prefect included) against the same work without Prefect (medians of alternating runs).

Targets: ours <= 1.3 x floor on both scopes, >= 5 x faster than the baseline on the project scope,
<= 2 KB per issue, Prefect's overhead <= 10% of the flow's wall time.

    python bench/bench_export.py [--project-issues 100000] [--tree-issues 20000] [--latency-ms 250]
                                 [--rate 20] [--pairs 3]
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import httpx

from atlasflow.clients.http import ApiClient
from atlasflow.clients.jira import REQUESTED_PAGE_SIZE, JiraClient
from atlasflow.clients.jira_paging import ID_PAGE_SIZE, PageDecoder
from atlasflow.reports.tree import TreeWalker
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.jira import JiraSite, iter_tree

USER, TOKEN = "demo@example.com", "sandbox-token"
PAGE_WITH_FIELDS = 100
BULK_EFFICIENT, BULK = 1000, 100


def client_for(sb: Sandbox, before_request: Callable[[], None] | None = None) -> JiraClient:
    """A client on a sandbox, the way the blocks build one."""
    return client_at(sb.jira_url, sb.mode, before_request)


def client_at(url: str, mode: str, before_request: Callable[[], None] | None = None) -> JiraClient:
    api = ApiClient("Jira", url, auth=(USER, TOKEN), timeout=60, before_request=before_request)
    return JiraClient(api, mode)  # type: ignore[arg-type]


# --- the sites, each in a process of its own -----------------------------------------------------


def _serve(total: int, depth: int, urls: Any, stop: Event) -> None:
    site = JiraSite.generated("cloud", total=total, depth=depth)
    site.settings.render_cache_size = 2 * total  # every payload rendered once: we measure the client, not the sandbox
    with Sandbox(mode="cloud", jira=site) as sb:
        sizes: dict[int, int] = {}
        for _key, level in iter_tree(site, "BIG-1"):
            sizes[level] = sizes.get(level, 0) + 1
        urls.put((sb.url, [sizes[k] for k in sorted(sizes)]))
        stop.wait()


@dataclass
class Site:
    url: str
    levels: list[int]
    process: multiprocessing.process.BaseProcess
    stop: Event

    def faults(self, **settings: Any) -> None:
        httpx.post(f"{self.url}/_sandbox/faults", json=settings, timeout=10).raise_for_status()

    def close(self) -> None:
        self.stop.set()
        self.process.join(timeout=20)


def start_site(total: int, depth: int) -> Site:
    context = multiprocessing.get_context("spawn")
    urls, stop = context.Queue(), context.Event()
    process = context.Process(target=_serve, args=(total, depth, urls, stop), daemon=True)
    process.start()
    url, levels = urls.get(timeout=600)
    return Site(url, levels, process, stop)


# --- the scopes -----------------------------------------------------------------------------------


@dataclass
class Scope:
    name: str
    kind: str  # "project" or "tree"
    site: Site

    @property
    def issues(self) -> int:
        return sum(self.site.levels)

    def floor(self, latency: float, rate: float) -> tuple[int, int, float]:
        """(fewest requests, longest dependent chain, floor seconds) the APIs allow for this scope."""
        if self.kind == "project":  # ids by 5,000, issues by bulk fetches of 1,000; the ids can be read by id
            # ranges at once (``id >= a AND id < b``), which takes knowing the span first: a chain of three
            n = self.issues
            fewest, chain = math.ceil(n / ID_PAGE_SIZE) + math.ceil(n / BULK_EFFICIENT), 3
        else:  # a level needs the one above; a walk needs sub-tasks (multi-valued): 100 issues a request
            fewest = chain = 0
            for n in self.site.levels:
                fewest += math.ceil(n / PAGE_WITH_FIELDS) + (math.ceil(n / ID_PAGE_SIZE) if n > PAGE_WITH_FIELDS else 0)
                chain += 1 if n <= PAGE_WITH_FIELDS else 2
        return fewest, chain, max(chain * latency, fewest / rate)


class SequentialClient(JiraClient):
    """The baseline: every search paged by ``nextPageToken``, one page after the other, one search at a time."""

    def search_pages(
        self, jql: str, fields: Sequence[str], decoder: PageDecoder | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        token: str | None = None
        while True:
            page = self.cloud_page(jql, fields, token, REQUESTED_PAGE_SIZE, decoder)
            yield page.get("issues", [])
            token = page.get("nextPageToken")
            if page.get("isLast", True) or not token:
                return

    def search_many(
        self, queries: Sequence[str], fields: Sequence[str], decoder: PageDecoder | None = None
    ) -> list[dict[str, Any]]:
        return [issue for q in queries for issue in self.search(q, fields, decoder)]


def sequential_client(url: str, before_request: Callable[[], None] | None) -> JiraClient:
    api = ApiClient("Jira", url, auth=(USER, TOKEN), timeout=60, before_request=before_request)
    return SequentialClient(api, "cloud")


@dataclass
class Run:
    issues: int
    requests: int
    fetch: float  # seconds walking Jira
    total: float  # seconds with the rows, the workbook and the saved snapshot
    writer_peak: int = 0  # the workbook writer's own peak bytes, when traced


def export(scope: Scope, client: JiraClient, out: Path, measure_writer: bool = False) -> Run:
    """One export: the flow's steps without Prefect."""
    from atlasflow.flows.jira_export import compare, fetch_roots, write_workbook
    from atlasflow.reports.scope import scope_of
    from atlasflow.reports.snapshots import SnapshotStore

    started = time.perf_counter()
    walker = TreeWalker(client, {}, levels_below=scope.kind == "tree")
    if scope.kind == "project":
        nodes = fetch_roots.fn(walker, scope_of(None, "BIG", None)).nodes
    else:
        nodes = fetch_roots.fn(walker, scope_of(["BIG-1"], None, None)).nodes
        seen, frontier = {n.key for n in nodes}, list(nodes)
        while frontier:
            frontier = walker.children(frontier, seen)
            nodes.extend(frontier)
    fetched = time.perf_counter()
    rows = walker.rows(nodes)
    snapshot, _, _ = compare.fn(rows, [], None, None)
    writer_peak = 0
    if measure_writer:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
    write_workbook.fn(rows, out / f"{scope.name}.xlsx", [], scope.name, client.api.base_url + "/browse/", None, None)
    if measure_writer:
        writer_peak = tracemalloc.get_traced_memory()[1] - before
    SnapshotStore(directory=out).save(scope.name, snapshot)  # as the flow does once the workbook is complete
    done = time.perf_counter()
    client.close()
    return Run(len({n.key for n in nodes}), client.requests_made, fetched - started, done - started, writer_peak)


def memory_per_issue(scope: Scope, out: Path) -> float:
    """Peak bytes traced during the export above the writer's own working memory, per issue (no latency)."""
    scope.site.faults()
    tracemalloc.start()
    try:
        run = export(scope, client_at(scope.site.url, "cloud"), out, measure_writer=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return (peak - run.writer_peak) / run.issues


# --- the run ---------------------------------------------------------------------------------------


def main() -> int:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # as `make bench` runs it: no telemetry
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project-issues", type=int, default=100_000)
    parser.add_argument("--tree-issues", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=float, default=250.0)
    parser.add_argument("--rate", type=float, default=20.0, help="shared rate limit, requests per second")
    parser.add_argument("--pairs", type=int, default=3, help="flow / no-Prefect runs compared end to end")
    args = parser.parse_args()

    sites = [start_site(args.project_issues, 3), start_site(args.tree_issues, 4)]
    scopes = [
        Scope(f"project of {sum(sites[0].levels):,}", "project", sites[0]),
        Scope(f"tree of {sum(sites[1].levels):,}", "tree", sites[1]),
    ]
    out = Path(tempfile.mkdtemp(prefix="bench-export-"))
    os.environ["ATLASFLOW_REPORTS_ROOT"] = str(out)  # the flow writes only inside the reports folder
    try:
        return run(args, scopes, out)
    finally:
        for site in sites:
            site.close()


def run(args: argparse.Namespace, scopes: list[Scope], out: Path) -> int:
    from prefect.client.orchestration import get_client
    from prefect.testing.utilities import prefect_test_harness
    from pydantic import SecretStr

    from atlasflow.blocks.credentials import JiraCredentials
    from atlasflow.flows.jira_export import jira_export
    from atlasflow.runtime.ratelimit import JIRA_RATE_LIMIT, PrefectRateLimiter
    from atlasflow.server_setup import ensure_rate_limit

    latency = args.latency_ms / 1000
    failed = 0
    with prefect_test_harness(server_startup_timeout=180):
        with get_client(sync_client=True) as prefect:
            ensure_rate_limit(prefect, args.rate)
        print(
            f"settings: {args.latency_ms:g} ms per request, rate limit {args.rate:g} requests/s "
            f"({JIRA_RATE_LIMIT}, Prefect global concurrency limit with slot decay), Cloud caps: "
            f"{PAGE_WITH_FIELDS} issues per page with fields, {ID_PAGE_SIZE} ids per page, bulk fetch "
            f"{BULK}/{BULK_EFFICIENT}",
            flush=True,
        )
        print(f"{'scope':<20} {'export':<12} {'requests':>9} {'fetch s':>9} {'vs floor':>9} {'+ workbook s':>13}")
        for scope in scopes:
            scope.site.faults()
            export(scope, client_at(scope.site.url, "cloud"), out)  # the sandbox renders each issue once, here
            scope.site.faults(latency_ms=args.latency_ms)
            fewest, chain, floor = scope.floor(latency, args.rate)
            ours = export(scope, client_at(scope.site.url, "cloud", PrefectRateLimiter(JIRA_RATE_LIMIT)), out)
            base = export(scope, sequential_client(scope.site.url, PrefectRateLimiter(JIRA_RATE_LIMIT)), out)
            if not ours.issues == base.issues == scope.issues:
                print(f"MISMATCH: ours {ours.issues}, baseline {base.issues}, site {scope.issues} issues")
                return 1
            print(f"{scope.name:<20} {'floor':<12} {fewest:>9} {floor:>9.2f} {'':>9}  (chain of {chain})")
            for name, run in (("ours", ours), ("sequential", base)):
                print(
                    f"{'':<20} {name:<12} {run.requests:>9} {run.fetch:>9.2f} {run.fetch / floor:>8.2f}x "
                    f"{run.total:>13.2f}",
                    flush=True,
                )
            failed += check(f"{scope.kind}: ours / floor", ours.fetch / floor, "<=", 1.3)
            if scope.kind == "project":
                failed += check("project: sequential / ours", base.fetch / ours.fetch, ">=", 5.0)

        project = scopes[0]
        per_issue = memory_per_issue(project, out)
        print(f"memory above the workbook writer's own: {per_issue:,.0f} bytes per issue ({project.name})")
        failed += check("memory per issue (KB)", per_issue / 1024, "<=", 2.0)

        project.site.faults(latency_ms=args.latency_ms)
        JiraCredentials(url=project.site.url, username=USER, token=SecretStr(TOKEN), deployment="cloud").save(
            "bench-jira", overwrite=True
        )
        flows, libraries = [], []
        for _ in range(args.pairs):  # alternating, so that a noisy spell of the machine hits both alike
            library = client_at(project.site.url, "cloud", PrefectRateLimiter(JIRA_RATE_LIMIT))
            libraries.append(export(project, library, out).total)
            started = time.perf_counter()
            result = jira_export(project_key="BIG", jira_block="bench-jira", output_dir=str(out), compare_to=None)
            flows.append(time.perf_counter() - started)
        t_flow, t_library = statistics.median(flows), statistics.median(libraries)
        overhead = (t_flow - t_library) / t_flow
        print(
            f"end to end ({project.name}), median of {args.pairs} alternating runs: jira_export flow {t_flow:.2f} s "
            f"({result['issues']:,} issues, {result['requests']} requests), same steps without Prefect "
            f"{t_library:.2f} s: Prefect's overhead {overhead:.1%} of the wall time "
            f"(flow {', '.join(f'{t:.2f}' for t in flows)}; without {', '.join(f'{t:.2f}' for t in libraries)})"
        )
        failed += check("Prefect overhead (%)", overhead * 100, "<=", 10.0)
    return 1 if failed else 0


def check(name: str, value: float, op: str, target: float) -> int:
    ok = value <= target if op == "<=" else value >= target
    print(f"  {name:<30} {value:8.2f}  target {op} {target:g}  {'PASS' if ok else 'FAIL'}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
