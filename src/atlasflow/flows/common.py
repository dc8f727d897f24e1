"""Moved to :mod:`atlasflow.runtime` (failures, tasks, params, progress, notify, hooks).

Kept only for ``atlasflow.deployments.setup``, which imports :data:`ENDED_EVENT` from here until its import line
names :mod:`atlasflow.runtime.hooks`; then this module goes.
"""

from atlasflow.runtime.hooks import ENDED_EVENT as ENDED_EVENT
