"""The report pipeline: the stages a Jira report is made of, plain Python without Prefect.

Stages, in the order a report runs them (the modules they live in):

1. **scope** (:mod:`.scope`): ``scope_of(root_tickets, project_key, jql)`` → :class:`~.scope.Scope`: the
   search (project keys quoted) or the root keys, whether levels below are walked, the description readers
   see, the file-name stem (``scope.file_stem("jira-history")``); ``scope_id(settings)`` names its snapshots.
2. **search and fetch** (:mod:`.tree`, :mod:`.pages`): ``TreeWalker(client, extra_fields, include_links=,
   levels_below=, within_projects=)`` fetches the roots (``fetch_keys``, or ``fetch_jql`` + ``forest``) and
   one level per search (``children``; :func:`~.tree.walk_levels` drives the levels), every search bounded
   to ``within_projects``; pages are decoded by :class:`~.pages.PageReader` to what is read. The paging
   (Cloud token, id ranges, bulk fetch, Data Center offsets and keyset) is the client's:
   :mod:`atlasflow.clients.jira_paging`, whose planner picks a strategy from the first page.
3. **rows** (:mod:`.rows`): ``walker.rows(nodes)`` → :class:`~atlasflow.formats.records.ExportRow`, the one
   row model (key, summary, type, status, people, dates, place in the tree, extra columns).
4. **sheets** (:mod:`.sheets`): the export's workbook layout, :func:`~.sheets.write_export_workbook`
   ("Root Issues", "Child Issues", "Hierarchy", "Changes", "Summary") and :func:`~.sheets.read_export_rows`.
5. **files** (:mod:`atlasflow.formats.excel`, pure): :func:`~atlasflow.formats.excel.write_workbook` writes
   any report's sheets to a temporary file that atomically replaces the target;
   :class:`~atlasflow.formats.excel.Table`, the cell values and
   :func:`~atlasflow.formats.excel.write_count_table` are what sheets are made of.
6. **snapshot and changes** (:mod:`.snapshots`, :mod:`atlasflow.formats.changes`): ``build_snapshot(rows,
   columns)``, ``SnapshotStore.load/save`` (saved only once the file reached a reader), ``diff_snapshots``,
   ``describe_changes``. Large builds run under the one GC pause, :func:`atlasflow.clients.gcpause.gc_paused`.

Shared steps outside the pipeline (they use Prefect): :func:`atlasflow.flows.snapshots.snapshot_store` (the
store by ``snapshot_block``), :func:`atlasflow.flows.delivery.deliver` (page, channel, storage) with a
:class:`~atlasflow.flows.delivery.Parcel`, the notification hooks (:func:`atlasflow.runtime.hooks.job_hooks`),
failures (:func:`atlasflow.runtime.failures.one_line_failures`), tasks (:mod:`atlasflow.runtime.tasks`).

How a new report plugs in (``atlasflow/flows/jira_history.py``, ``jira_worklogs.py``), following
:mod:`atlasflow.flows.jira_export`:

- **It provides** its scope kind (the export's three, unchanged: pass the same parameters to ``scope_of``;
  worklogs narrows ``scope.jql`` with ``worklogDate`` clauses and passes it to ``walker.fetch_jql``), the
  fields it fetches (``TreeWalker``'s ``extra_fields``, or its own ``PageReader`` fields), what it fetches
  besides issues (changelogs, worklogs: a client method whose paging is a strategy in
  :mod:`atlasflow.clients.jira_paging`), its row builder (a class like :class:`~.rows.ExportRows` turning
  nodes and what it fetched into its own rows), and its sheets (a ``write_<report>_workbook(path, rows, …)``
  in a module beside :mod:`.sheets`: a ``fill(book)`` of :class:`~atlasflow.formats.excel.Table` sheets
  handed to :func:`~atlasflow.formats.excel.write_workbook`).
- **It reuses** the scope, the walker (roots, ``within_projects``, and :func:`~.tree.walk_levels`: levels
  down to ``max_depth``, else stopped at ``MAX_LEVELS``), the client's rate limit and retries, the snapshot
  store and its save rule (its own ``scope_id`` settings, e.g. ``{"report": "history", ...}``), delivery and
  notification as the export calls them, and the file name ``f"{scope.file_stem(report)}-{stamp}.xlsx"``.
- **Its flow** composes the stages as tasks (``remote_task`` for what talks to Jira, ``task`` for the rest)
  and returns what the export returns: ``path``, ``delivered``, counts, ``requests``, ``duration_seconds``.
"""
