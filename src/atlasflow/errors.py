"""Every error atlasflow raises on purpose, in one tree.

Our exception hierarchy::

    AtlasflowError                      a failure atlasflow words itself: its message is the whole story
    ├── ConfigurationError (ValueError) what was asked cannot be done as given
    │   ├── ConfigError                 configure.py: the configuration file lacks something
    │   ├── OutsideReportsFolder        files.py: a path parameter outside the reports folder
    │   ├── SourceError                 formats/sources.py: a source file that cannot be read as rows
    │   ├── RequestRefused              flows/inbox_rules.py: inbox parameters the page may not set
    │   └── Rejected                    flows/inbox_access.py: an inbox row that cannot be started as written
    ├── ApiError                        a service refused or failed a request (service, method, path, status)
    │   ├── AuthenticationError         401, or the sign-in itself failed (every route tried is named)
    │   ├── PermissionDenied            403
    │   ├── NotFound                    404
    │   ├── Conflict                    409
    │   │   └── VersionConflict         clients/confluence.py: the page moved on between read and write
    │   ├── FileTooLarge                clients/mattermost.py: the server's file size limit (413)
    │   ├── BodyTooLarge                a response body over the client's cap
    │   └── TransientError              still failing after every retry (5xx, dropped connections)
    │       └── RateLimited             429 (or 503 with Retry-After) to the last retry
    ├── JobFailed                       a job ran and its outcome is a failure
    │   ├── DeliveryError (RuntimeError)       flows/delivery.py: a destination did not get the file
    │   ├── ShellCommandFailed (RuntimeError)  flows/shell_job.py: a non-zero exit
    │   ├── ShellTimeout (RuntimeError)        flows/shell_job.py: stopped at its timeout
    │   ├── JobRefused                  flows/jira_maintenance.py: a guard refused before anything was written
    │   ├── MissingPermissions          flows/jira_maintenance.py: the account lacks required permissions
    │   └── IssuesFailed                flows/jira_maintenance.py: some issues could not be changed
    └── TableError (ValueError)         formats/confluence_tables/errors.py: a page's table cannot be used as asked
        ├── TableNotFound               no table matches the index or heading asked for
        ├── KeyColumnMissing            the key column is not in the table's header
        ├── DuplicateKeys               a key occurs more than once
        ├── MalformedStorage            the storage format could not be parsed reliably
        └── MergedCells                 a merge would touch a cell spanning several columns or rows

Where a class lives: this module defines the categories callers catch across modules (the bases above and
the kinds of :class:`ApiError` the HTTP layer raises for any client); a class one module (or one package, like
the tables' ``TableError`` family) raises lives there, on a base from here, and its place is named above.
Classes that were a ``ValueError`` or a ``RuntimeError`` before the tree still are, so an existing
``except ValueError`` keeps working.

Whether a failure is *expected* (reported in one line, without a traceback) is ``isinstance(exc,
AtlasflowError)`` (see :func:`atlasflow.runtime.failures.is_expected`, which also lists the few foreign
exceptions that are expected, each with why): anything else, a bug in atlasflow or a library's failure, keeps
its traceback. Outside the tree on purpose: ``PrefectBusy`` (runtime/ratelimit.py), Prefect's API answering
503 past the limiter's patience.

No Prefect import here: clients, formats and flows all raise these.
"""

from __future__ import annotations


class AtlasflowError(Exception):
    """A failure atlasflow words itself; the message is one line that says what and why."""


class ConfigurationError(AtlasflowError, ValueError):
    """A bad block, URL, parameter, file or request: what was asked cannot be done as given."""


class JobFailed(AtlasflowError):
    """A job ran and its outcome is a failure (a delivery, a command, a guard, some issues)."""


class ApiError(AtlasflowError):
    """A request that failed for good; the message quotes what the server said (secrets scrubbed).

    Attributes:
        service: ``Jira``, ``Confluence``, ``Mattermost``, ….
        method: The HTTP method.
        path: The path requested (no query).
        status: The HTTP status, or ``None`` when no answer came (a dropped connection).
        detail: The one-line reason, as the server (or the client) worded it.
    """

    def __init__(self, service: str, method: str, path: str, status: int | None, detail: str) -> None:
        self.service = service
        self.method = method
        self.path = path
        self.status = status
        self.detail = detail
        where = f"{method} {path}"
        prefix = f"{service} answered {status} to {where}" if status else f"{service}: {where} failed"
        super().__init__(f"{prefix}: {detail}")


class AuthenticationError(ApiError):
    """Credentials refused for good (401), or the sign-in failed: the message names what was tried."""


class PermissionDenied(ApiError):
    """The account may not do this (403)."""


class NotFound(ApiError):
    """No such resource, or one the account may not see (404)."""


class Conflict(ApiError):
    """The request conflicts with the resource's current state (409)."""


class BodyTooLarge(ApiError):
    """A response body over the cap (on the wire or decompressed); the message says which and the cap."""


class TransientError(ApiError):
    """Still failing after every retry (rate limiting, 5xx, dropped connections); a later run may pass.

    Attributes:
        retry_after: Seconds the server asked to wait, if it said.
    """

    def __init__(
        self, service: str, method: str, path: str, status: int | None, detail: str, retry_after: float | None = None
    ) -> None:
        super().__init__(service, method, path, status, detail)
        self.retry_after = retry_after


class RateLimited(TransientError):
    """Refused as over the rate limit (429, or 503 with ``Retry-After``) to the last retry."""


#: The :class:`ApiError` kind of a final (not retried) refusal, by HTTP status.
_BY_STATUS: dict[int, type[ApiError]] = {401: AuthenticationError, 403: PermissionDenied, 404: NotFound, 409: Conflict}


def api_error(service: str, method: str, path: str, status: int | None, detail: str) -> ApiError:
    """The :class:`ApiError` for a final refusal with ``status``: its kind when the status has one."""
    kind = _BY_STATUS.get(status, ApiError) if status is not None else ApiError
    return kind(service, method, path, status, detail)
