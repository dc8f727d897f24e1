"""The sandbox's Jira: an in-memory site answering the REST routes the product calls, in Cloud or Data Center shape.

Modules, one concern each:

* ``model``: the records (issues, users, projects, fields, links, sprints) and the site's limits.
* ``catalog``: what every site has (statuses, types, priorities, link types, options, field definitions).
* ``site``: :class:`JiraSite`, the store with each mode's hierarchy rules; ``iter_tree`` walks it.
* ``seed``: the demo site and generated trees.
* ``jql``: the JQL subset, parsed and evaluated over a site.
* ``render``: issue JSON per API version and mode.
* ``edits``: issue writes, validated as Jira does.
* ``http``: request parameters, JSON answers and Jira's error bodies.
* ``routes`` and ``permissions``: the Starlette routes.
"""

from atlasflow.sandbox.jira.model import JiraSettings
from atlasflow.sandbox.jira.routes import jira_routes
from atlasflow.sandbox.jira.site import JiraSite, iter_tree

__all__ = ["JiraSettings", "JiraSite", "iter_tree", "jira_routes"]
