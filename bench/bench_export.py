"""Jira export traversal: our level-at-a-time walk against the naive walker of the original design.

On the sandbox with a generated tree (default 20,000 issues, depth 4) and injected latency, prints the
requests each walker made, the minimal possible count, wall times, and the ratios against the targets:
requests <= 1.2x the minimum, >= 25x fewer requests and >= 10x less wall time than the naive walker.

    python bench/bench_export.py [--total 20000] [--depth 4] [--latency-ms 5] [--mode cloud]
"""

from __future__ import annotations

import argparse
import math
import time
from collections import deque

from atlasflow.clients.http import ApiClient
from atlasflow.clients.jira import JiraClient
from atlasflow.export.tree import Node, TreeWalker
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.core import Faults
from atlasflow.sandbox.jira_data import JiraSite, iter_tree

FIELDS = ["summary", "issuetype", "status", "priority", "assignee", "created", "updated", "parent"]


def client_for(sb: Sandbox) -> JiraClient:
    api = ApiClient("Jira", sb.jira_url, auth=("demo@example.com", "sandbox-token"), timeout=30)
    return JiraClient(api, sb.mode)


def ours(sb: Sandbox, root: str) -> tuple[int, int, float]:
    """(issues, requests, seconds) of the export's walk."""
    client = client_for(sb)
    started = time.perf_counter()
    walker = TreeWalker(client, {})
    nodes = [Node(i) for i in walker.fetch_keys([root])]
    seen = {n.key for n in nodes}
    frontier = nodes
    while frontier:
        frontier = walker.children(frontier, seen)
        nodes.extend(frontier)
    elapsed = time.perf_counter() - started
    client.close()
    return len(nodes), client.requests_made, elapsed


def naive(sb: Sandbox, root: str) -> tuple[int, int, float]:
    """The original design's walk: one search for the children of each issue, one issue at a time."""
    client = client_for(sb)
    epic_link = client.epic_link_field() if sb.mode == "datacenter" else None
    started = time.perf_counter()
    queue, seen = deque([root]), {root}
    while queue:
        key = queue.popleft()
        jql = f'parent = "{key}"' + (
            f' OR cf[{epic_link.removeprefix("customfield_")}] = "{key}"' if epic_link else ""
        )
        for issue in client.search(jql, FIELDS):
            if issue["key"] not in seen:
                seen.add(issue["key"])
                queue.append(issue["key"])
    elapsed = time.perf_counter() - started
    client.close()
    return len(seen), client.requests_made, elapsed


def minimum(site: JiraSite, root: str, page_cap: int) -> int:
    """Fewest possible requests: a page per ``page_cap`` issues of each level, and the root's own page."""
    sizes: dict[int, int] = {}
    for _key, level in iter_tree(site, root):
        sizes[level] = sizes.get(level, 0) + 1
    return sum(math.ceil(n / page_cap) for n in sizes.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=20_000)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--mode", choices=["cloud", "datacenter"], default="cloud")
    args = parser.parse_args()

    site = JiraSite.generated(args.mode, total=args.total, depth=args.depth)
    root = "BIG-1"
    with Sandbox(mode=args.mode, jira=site) as sb:
        sb.state.faults = Faults(latency_ms=args.latency_ms)
        least = minimum(site, root, site.settings.max_results)
        n_ours, r_ours, t_ours = ours(sb, root)
        n_naive, r_naive, t_naive = naive(sb, root)
    if n_ours != n_naive:
        print(f"MISMATCH: ours found {n_ours} issues, naive {n_naive}")
        return 1
    checks = [
        ("requests vs minimum", r_ours / least, "<=", 1.2),
        ("naive/ours requests", r_naive / r_ours, ">=", 25.0),
        ("naive/ours wall time", t_naive / t_ours, ">=", 10.0),
    ]
    print(f"tree: {n_ours} issues, depth {args.depth}, {args.mode}, latency {args.latency_ms} ms per request")
    print(f"{'walker':<8} {'requests':>9} {'seconds':>9}")
    print(f"{'minimum':<8} {least:>9}")
    print(f"{'ours':<8} {r_ours:>9} {t_ours:>9.2f}")
    print(f"{'naive':<8} {r_naive:>9} {t_naive:>9.2f}")
    failed = 0
    for name, value, op, target in checks:
        ok = value <= target if op == "<=" else value >= target
        failed += not ok
        print(f"{name:<22} {value:8.2f}x  target {op} {target}x  {'PASS' if ok else 'FAIL'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
