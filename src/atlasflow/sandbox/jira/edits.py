"""Issue writes (``PUT issue/{key}``, ``POST issue``): wire field values -> :class:`JiraSite` changes, refused
with the messages Jira gives."""

from __future__ import annotations

from typing import Any

from atlasflow.sandbox.jira.catalog import (
    PLATFORM_OPTIONS,
    REGION_OPTIONS,
    TEAM_OPTIONS,
)
from atlasflow.sandbox.jira.http import BadRequest
from atlasflow.sandbox.jira.model import DATE_RE, FieldDef, Issue, check_summary
from atlasflow.sandbox.jira.render import adf_text
from atlasflow.sandbox.jira.site import JiraSite

CANNOT_SET = "Field '{}' cannot be set. It is not on the appropriate screen, or unknown."
NOT_ADF = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
_EDITABLE_SYSTEM = frozenset({"summary", "description", "priority", "assignee", "labels"})


class IssueEditor:
    """Validates and applies write bodies for one site (the site's mode decides Cloud or Data Center rules)."""

    def __init__(self, site: JiraSite) -> None:
        self.site = site
        self.cloud = site.mode == "cloud"

    def apply(self, issue: Issue, body: dict[str, Any], api: str) -> None:
        """Apply a PUT body (``fields`` and ``update`` operations) or raise 400 with Jira's errors."""
        fields = dict(body.get("fields") or {})
        errors: dict[str, str] = {}
        for name, operations in (body.get("update") or {}).items():
            for operation in operations if isinstance(operations, list) else [operations]:
                if not isinstance(operation, dict) or len(operation) != 1:
                    errors[name] = f"Field '{name}': each operation needs exactly one of set, add, remove."
                    continue
                ((verb, value),) = operation.items()
                if verb == "set":
                    fields[name] = value
                elif name == "labels" and verb in ("add", "remove"):
                    labels = list(fields.get("labels", issue.labels))
                    fields["labels"] = (
                        [*labels, value] if verb == "add" else [x for x in labels if x != value]
                    )
                else:
                    errors[name] = f"Field '{name}' does not support the operation '{verb}'."
        move = self.cloud and "parent" in fields
        parent = fields.pop("parent") if move else None
        new_parent = self.issue_ref(parent, "parent", errors) if parent is not None else None
        changes = self.field_changes(fields, api, errors)
        if errors:
            raise BadRequest(errors=errors)
        try:
            if move:
                self.site.move_issue(issue.key, new_parent)
            if changes:
                self.site.update_issue(issue.key, **changes)
        except ValueError as error:
            raise BadRequest(str(error)) from None

    def issue_ref(self, value: Any, name: str, errors: dict[str, str]) -> str | None:
        ident = (
            str(value.get("key") or value.get("id") or "") if isinstance(value, dict) else str(value or "")
        )
        found = self.site.find_issue(ident) if ident else None
        if found is None:
            errors[name] = f"Could not find issue by id or key '{ident}'."
            return None
        return found.key

    def field_changes(self, fields: dict[str, Any], api: str, errors: dict[str, str]) -> dict[str, Any]:
        """Wire ``fields`` -> :meth:`JiraSite.update_issue` arguments; problems go to ``errors``."""
        changes: dict[str, Any] = {}
        for name, value in fields.items():
            fdef = self.site.field_by_id.get(name)
            if fdef is None or not (fdef.custom or name in _EDITABLE_SYSTEM):
                errors[name] = CANNOT_SET.format(name)
                continue
            try:
                changes[name] = self._field_change(fdef, value, api)
            except ValueError as error:
                errors[name] = str(error)
        return changes

    def _field_change(self, fdef: FieldDef, value: Any, api: str) -> Any:
        site, name = self.site, fdef.id
        if name == "summary":
            return check_summary(value)
        if name == "description":
            if (
                api == "3"
                and value is not None
                and not (isinstance(value, dict) and value.get("type") == "doc")
            ):
                raise ValueError(NOT_ADF)
            return adf_text(value) if isinstance(value, dict) else value
        if name == "labels":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError("Operation value must be an array of strings.")
            spaced = next((v for v in value if " " in v), None)
            if spaced is not None:
                raise ValueError(f"The label '{spaced}' contains spaces which is invalid.")
            return value
        if name == "priority":
            ident = value.get("name") or value.get("id") if isinstance(value, dict) else None
            if value is not None and (ident is None or site.find_priority(str(ident)) is None):
                raise ValueError("The priority selected is invalid.")
            return ident
        if name == "assignee":
            return self._assignee(value)
        return self._custom_change(fdef, value, api)

    def _assignee(self, value: Any) -> str | None:
        ident = (
            (value.get("accountId") if self.cloud else value.get("name")) if isinstance(value, dict) else None
        )
        if ident is None:
            return None
        user = self.site.find_user(str(ident))
        if user is None or (self.cloud and user.account_id != ident):
            raise ValueError(
                "Specified user does not exist or you do not have required permissions"
                if self.cloud
                else f"User '{ident}' does not exist."
            )
        return user.name

    def _custom_change(self, fdef: FieldDef, value: Any, api: str) -> Any:
        if value is None:
            return None
        kind = fdef.kind
        if kind == "textarea":
            if api == "3" and not (isinstance(value, dict) and value.get("type") == "doc"):
                raise ValueError(NOT_ADF)
            return adf_text(value) if isinstance(value, dict) else str(value)
        if kind == "sprint":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError("Number value expected as the Sprint id.")
            return self._neutral(fdef, value)
        if kind == "multioption":
            if not isinstance(value, list):
                raise ValueError("Operation value must be an array of options.")
            return self._neutral(fdef, [_option_value(v, PLATFORM_OPTIONS) for v in value])
        if kind == "cascading":
            parent = _option_value(value, {k: v[0] for k, v in REGION_OPTIONS.items()})
            child = value.get("child") if isinstance(value, dict) else None
            children = REGION_OPTIONS.get(str(parent), ("", {}))[1]
            return self._neutral(fdef, [parent, _option_value(child, children) if child else None])
        if kind in ("user", "users"):
            refs = value if isinstance(value, list) else [value]
            names = [self._user_ref(ref) for ref in refs]
            return self._neutral(fdef, names if kind == "users" else names[0])
        if kind == "group":
            return self._neutral(fdef, value.get("name") if isinstance(value, dict) else value)
        if fdef.kind == "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError("Operation value must be a number")
            return value
        if fdef.kind == "option":
            option = value.get("value") if isinstance(value, dict) else None
            by_id = {v: k for k, v in TEAM_OPTIONS.items()}
            option = option or (by_id.get(str(value.get("id"))) if isinstance(value, dict) else None)
            if option not in TEAM_OPTIONS:
                raise ValueError(f"Option value '{value}' is not valid")
            return option
        if fdef.kind == "epiclink":
            epic = self.site.find_issue(str(value))
            if epic is None or epic.type != "Epic":
                raise ValueError(f"Issue '{value}' is not an epic.")
            return epic.key
        if fdef.kind == "date" and not (isinstance(value, str) and DATE_RE.match(value)):
            raise ValueError(f"Error parsing date string: {value}")
        return str(value)

    def _neutral(self, fdef: FieldDef, value: Any) -> Any:
        return self.site.custom_value(fdef, value)

    def _user_ref(self, ref: Any) -> str:
        """A user picker value (``{"accountId": …}`` on Cloud, ``{"name": …}`` on Data Center) as a username."""
        ident = (ref.get("accountId") if self.cloud else ref.get("name")) if isinstance(ref, dict) else None
        user = self.site.find_user(str(ident)) if ident else None
        if user is None or (self.cloud and user.account_id != ident):
            raise ValueError(f"User '{ident}' does not exist.")
        return user.name


def _option_value(ref: Any, options: dict[str, str]) -> str:
    """An option as a write sends it (``{"value": …}`` or ``{"id": …}``) as its value."""
    if isinstance(ref, dict):
        if ref.get("value") in options:
            return str(ref["value"])
        by_id = {v: k for k, v in options.items()}
        if str(ref.get("id")) in by_id:
            return by_id[str(ref.get("id"))]
    raise ValueError(f"Option value '{ref}' is not valid")
