"""The Prefect glue, in one room: what every job shares when it runs under Prefect.

- :mod:`~atlasflow.runtime.failures`: expected failure or bug (``isinstance`` of
  :class:`~atlasflow.errors.AtlasflowError`), one-line failure states, the traceback filter a run installs.
- :mod:`~atlasflow.runtime.tasks`: ``remote_task`` (retried only for transient failures), ``opaque``.
- :mod:`~atlasflow.runtime.params`: flow parameter types (``PageId``, ``page_key``, ``table_ref``).
- :mod:`~atlasflow.runtime.progress`: ``RunProgressBar``, a run's progress artifact.
- :mod:`~atlasflow.runtime.notify`: the notification policy and the end-of-run post (secrets scrubbed).
- :mod:`~atlasflow.runtime.hooks`: ``job_hooks`` (post, end event, results) and the job registry.
- :mod:`~atlasflow.runtime.ratelimit`: the global Jira rate limit, a Prefect concurrency limit with slot decay.

Clients, formats and the report stages import none of this (they import no Prefect); flows do. Importing a
module here changes no logger and starts nothing.
"""
