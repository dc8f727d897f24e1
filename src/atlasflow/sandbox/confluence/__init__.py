"""The sandbox's Confluence: pages in storage format behind the v1 content API and the Cloud v2 API.

Modules, one concern each:

* ``pages``: :class:`ConfluenceSite`, spaces and pages with their version history, view/edit rights and the
  version-checked writes (the concurrent-edit fault included).
* ``seed``: the demo space and its pages, at stable ids (the ``*_ID`` constants).
* ``users``: account ids, user keys, user links in storage and user JSON.
* ``v1``: ``.../rest/api/content`` (Cloud under ``/wiki``, Data Center at the root).
* ``v2``: ``/wiki/api/v2`` pages, spaces and users-bulk (Cloud).
* ``attachments``: v1 attachment upload and download.
* ``http``: request bodies and parameters, timestamps, :class:`ContentError`.
"""

from atlasflow.sandbox.confluence.http import ContentError, Endpoint
from atlasflow.sandbox.confluence.pages import (
    COLLEAGUE,
    COLLEAGUE_EDIT,
    SPACE_EDIT_PERMISSION,
    ConfluenceSite,
    PageSnapshot,
    PageVersion,
    Space,
)
from atlasflow.sandbox.confluence.seed import (
    BROKEN_PAGE_ID,
    EXPORT_SUMMARY_ID,
    HOME_PAGE_ID,
    JOB_INBOX_ID,
    JOB_RESULTS_ID,
    NO_TABLES_ID,
    RESTRICTED_PAGE_ID,
    SPACE_ID,
    SPACE_KEY,
    SPACE_NAME,
    TEAM_ROSTER_ID,
)
from atlasflow.sandbox.confluence.v1 import confluence_routes
from atlasflow.sandbox.confluence.v2 import confluence_v2_routes, v2_error

__all__ = [
    "BROKEN_PAGE_ID",
    "COLLEAGUE",
    "COLLEAGUE_EDIT",
    "EXPORT_SUMMARY_ID",
    "HOME_PAGE_ID",
    "JOB_INBOX_ID",
    "JOB_RESULTS_ID",
    "NO_TABLES_ID",
    "RESTRICTED_PAGE_ID",
    "SPACE_EDIT_PERMISSION",
    "SPACE_ID",
    "SPACE_KEY",
    "SPACE_NAME",
    "TEAM_ROSTER_ID",
    "ConfluenceSite",
    "ContentError",
    "Endpoint",
    "PageSnapshot",
    "PageVersion",
    "Space",
    "confluence_routes",
    "confluence_v2_routes",
    "v2_error",
]
