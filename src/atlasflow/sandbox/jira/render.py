"""Issue JSON as Jira Cloud (v2 and v3, agile) and Data Center send it: fields by id, users, statuses, links,
versions, time tracking, comments, worklogs, attachments, custom fields; rendered once per issue, fields
selection and context and cached until the site changes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from atlasflow.sandbox.jira.catalog import (
    COMPONENTS,
    EPIC_LINK_FIELD,
    EPIC_NAME_FIELD,
    PLATFORM_OPTIONS,
    REGION_OPTIONS,
    RESOLUTIONS,
    SECURITY_LEVELS,
    SPRINTS,
    TEAM_OPTIONS,
    VERSIONS,
)
from atlasflow.sandbox.jira.http import list_param, to_json
from atlasflow.sandbox.jira.model import FieldDef, Issue, Link, Sprint
from atlasflow.sandbox.jira.site import JiraSite

ISSUE_EXPAND = "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"


def adf_document(text: str | None) -> dict[str, Any] | None:
    """Plain text as an Atlassian Document: paragraphs split on blank lines, hard breaks on newlines,
    a block whose lines all start with ``* `` as a bullet list."""
    if text is None:
        return None
    blocks = []
    for block in text.split("\n\n"):
        lines = block.split("\n")
        if all(line.startswith("* ") for line in lines):
            items = [{"type": "listItem", "content": [_adf_paragraph([line[2:]])]} for line in lines]
            blocks.append({"type": "bulletList", "content": items})
        else:
            blocks.append(_adf_paragraph(lines))
    return {"type": "doc", "version": 1, "content": blocks}


def _adf_paragraph(lines: list[str]) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for n, line in enumerate(lines):
        if n:
            content.append({"type": "hardBreak"})
        if line:
            content.append({"type": "text", "text": line})
    return {"type": "paragraph", "content": content}


def adf_text(node: Any) -> str:
    """The plain text of an Atlassian Document (inverse of :func:`adf_document` for its output)."""
    if not isinstance(node, dict):
        return ""
    kind = node.get("type")
    if kind == "text":
        return str(node.get("text", ""))
    if kind == "hardBreak":
        return "\n"
    if kind == "bulletList":
        return "\n".join("* " + adf_text(item) for item in node.get("content", []))
    separator = "\n\n" if kind == "doc" else ""
    return separator.join(adf_text(child) for child in node.get("content", []))


@dataclass(frozen=True, slots=True)
class Ctx:
    """What an issue payload depends on besides the issue: where it is read from and by whom."""

    base: str
    api: str  # "2" or "3"
    visible: frozenset[str]
    agile: bool = False


class IssueRenderer:
    """Renders the issues of one site; the routes hold one per site."""

    def __init__(self, site: JiraSite) -> None:
        self.site = site
        self.cloud = site.mode == "cloud"
        self._rendered: dict[tuple[str, tuple[str, ...], Ctx], bytes] = {}
        self._rendered_generation = -1

    def extras(self, expand: Any, selection: tuple[str, ...]) -> bytes:
        """``"names"``/``"schema"`` members for an ``expand``, as JSON members with a leading comma."""
        wanted = set(list_param(expand))
        out = b""
        fields = [self.site.field(fid) for fid in selection]
        if "names" in wanted:
            out += b',"names":' + to_json({f.id: f.name for f in fields if f})
        if "schema" in wanted:
            out += b',"schema":' + to_json({f.id: f.schema for f in fields if f and f.schema})
        return out

    def issue_bytes(self, issue: Issue, selection: tuple[str, ...], ctx: Ctx) -> bytes:
        site = self.site
        if (
            self._rendered_generation != site.generation
            or len(self._rendered) >= site.settings.render_cache_size
        ):
            self._rendered.clear()
            self._rendered_generation = site.generation
        cache_key = (issue.key, selection, ctx)
        body = self._rendered.get(cache_key)
        if body is None:
            body = self._rendered[cache_key] = to_json(self._issue_json(issue, selection, ctx))
        return body

    def _issue_json(self, issue: Issue, selection: tuple[str, ...], ctx: Ctx) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        for fid in selection:
            if fid != "parent" or issue.parent:
                fields[fid] = self._field_value(issue, fid, ctx)
        resource = "agile/1.0" if ctx.agile else f"api/{ctx.api}"
        if ctx.agile:
            fields["epic"] = self._agile_epic(issue, ctx)
        return {
            "expand": ISSUE_EXPAND,
            "id": str(issue.id),
            "self": f"{ctx.base}/rest/{resource}/issue/{issue.id}",
            "key": issue.key,
            "fields": fields,
        }

    def _field_value(self, issue: Issue, fid: str, ctx: Ctx) -> Any:
        site = self.site
        if fid in ("summary", "created", "updated"):
            return getattr(issue, fid)
        if fid == "labels":
            return list(issue.labels)
        if fid == "issuetype":
            return self._type_json(issue, ctx)
        if fid == "status":
            return self._status_json(issue, ctx)
        if fid == "priority":
            return self._priority_json(issue.priority, ctx)
        if fid in ("assignee", "reporter"):
            username = getattr(issue, fid)
            return self.user_json(username, ctx) if username else None
        if fid == "project":
            return self._project_json(issue.project, ctx)
        if fid == "description":
            return adf_document(issue.description) if ctx.api == "3" else issue.description
        if fid == "parent":
            return self._ref_json(site.issues[issue.parent], ctx) if issue.parent else None
        if fid == "subtasks":
            return [self._ref_json(sub, ctx) for sub in site.subtasks_of(issue.key)]
        if fid == "issuelinks":
            links = sorted(site.links_of.get(issue.key, ()), key=lambda link: link.id)
            return [self._link_json(link, issue, ctx) for link in links if self._other_visible(link, issue, ctx)]
        if fid in _OTHER_SYSTEM_FIELDS:
            return self._detail_json(issue, fid, ctx)
        return self._custom_json(issue, site.field_by_id[fid], ctx)

    # ------------------------------------------------------------------ the other system fields

    def _detail_json(self, issue: Issue, fid: str, ctx: Ctx) -> Any:
        """Versions, components, time tracking, comments … as Cloud (v2/v3) or Data Center send them."""
        details = issue.details
        api = f"{ctx.base}/rest/api/{ctx.api}"
        if fid in _TIME_FIELDS:
            return self._time_value(issue, fid)
        if fid == "creator":
            return self.user_json(issue.reporter, ctx) if issue.reporter else None
        if fid == "statusCategory":
            status = self.site.status(issue)
            return {
                "self": f"{api}/statuscategory/{status.category_id}",
                "id": status.category_id,
                "key": status.category_key,
                "colorName": status.color,
                "name": status.category_name,
            }
        if fid == "resolutiondate":
            return issue.updated if details.get("resolution") else None
        if fid == "votes":
            return {"self": f"{api}/issue/{issue.key}/votes", "votes": details.get("votes", 0), "hasVoted": False}
        if fid == "watches":
            count = details.get("watches", 0)
            return {"self": f"{api}/issue/{issue.key}/watchers", "watchCount": count, "isWatching": False}
        if fid == "comment":
            comments = [self._comment_json(issue, n, entry, ctx) for n, entry in enumerate(details.get("comment", []))]
            return {
                "comments": comments,
                "self": f"{api}/issue/{issue.id}/comment",
                "maxResults": len(comments),
                "total": len(comments),
                "startAt": 0,
            }
        if fid == "worklog":
            logs = [self._worklog_json(issue, n, entry, ctx) for n, entry in enumerate(details.get("worklog", []))]
            return {"startAt": 0, "maxResults": 20, "total": len(logs), "worklogs": logs[:20]}
        if fid == "attachment":
            return [
                self._attachment_json(issue, n, entry, ctx) for n, entry in enumerate(details.get("attachment", []))
            ]
        return _DETAIL_RENDERERS[fid](details.get(fid), api, ctx.api)

    def _rich(self, text: str | None, ctx: Ctx) -> Any:
        return adf_document(text) if ctx.api == "3" else text

    def _comment_json(self, issue: Issue, n: int, entry: tuple[str, str, str], ctx: Ctx) -> dict[str, Any]:
        author, body, created = entry
        cid = str(20000 + issue.id * 10 + n)
        out = {
            "self": f"{ctx.base}/rest/api/{ctx.api}/issue/{issue.id}/comment/{cid}",
            "id": cid,
            "author": self.user_json(author, ctx),
            "body": self._rich(body, ctx),
            "updateAuthor": self.user_json(author, ctx),
            "created": created,
            "updated": created,
        }
        if self.cloud:
            out["jsdPublic"] = True
        return out

    def _worklog_json(self, issue: Issue, n: int, entry: tuple[str, str, int, str], ctx: Ctx) -> dict[str, Any]:
        author, started, seconds, comment = entry
        wid = str(30000 + issue.id * 10 + n)
        return {
            "self": f"{ctx.base}/rest/api/{ctx.api}/issue/{issue.id}/worklog/{wid}",
            "author": self.user_json(author, ctx),
            "updateAuthor": self.user_json(author, ctx),
            "comment": self._rich(comment, ctx),
            "created": started,
            "updated": started,
            "started": started,
            "timeSpent": _duration(seconds),
            "timeSpentSeconds": seconds,
            "id": wid,
            "issueId": str(issue.id),
        }

    def _attachment_json(
        self, issue: Issue, n: int, entry: tuple[str, int, str, str, str], ctx: Ctx
    ) -> dict[str, Any]:
        filename, size, mime, author, created = entry
        aid = str(40000 + issue.id * 10 + n)
        return {
            "self": f"{ctx.base}/rest/api/{ctx.api}/attachment/{aid}",
            "id": aid,
            "filename": filename,
            "author": self.user_json(author, ctx),
            "created": created,
            "size": size,
            "mimeType": mime,
            "content": f"{ctx.base}/secure/attachment/{aid}/{quote(filename)}",
        }

    def _time_value(self, issue: Issue, fid: str) -> Any:
        original, remaining, spent = issue.details.get("timetracking") or (None, None, None)
        if fid == "timetracking":
            out: dict[str, Any] = {}
            for name, seconds in (
                ("originalEstimate", original),
                ("remainingEstimate", remaining),
                ("timeSpent", spent),
            ):
                if seconds is not None:
                    out[name] = _duration(seconds)
                    out[name + "Seconds"] = seconds
            return out
        if fid == "timeoriginalestimate":
            return original
        if fid == "timeestimate":
            return remaining
        if fid in ("timespent", "aggregatetimespent"):
            return spent
        if fid == "workratio":
            return round(100 * spent / original) if original and spent is not None else -1
        total = (spent or 0) + (remaining or 0)
        percent = {"percent": round(100 * (spent or 0) / total)} if total else {}
        return {"progress": spent or 0, "total": total, **percent}

    def _custom_json(self, issue: Issue, fdef: FieldDef, ctx: Ctx) -> Any:
        if fdef.id == EPIC_LINK_FIELD:
            return issue.epic
        value = issue.custom.get(fdef.id)
        if value is None:
            return None
        kind = fdef.kind
        option = f"{ctx.base}/rest/api/{ctx.api}/customFieldOption"
        if kind == "option":
            return {"self": f"{option}/{TEAM_OPTIONS[value]}", "value": value, "id": TEAM_OPTIONS[value]}
        if kind == "multioption":
            return [{"self": f"{option}/{PLATFORM_OPTIONS[v]}", "value": v, "id": PLATFORM_OPTIONS[v]} for v in value]
        if kind == "cascading":
            parent, child = value
            parent_id, children = REGION_OPTIONS[parent]
            out: dict[str, Any] = {"self": f"{option}/{parent_id}", "value": parent, "id": parent_id}
            if child is not None:
                out["child"] = {"self": f"{option}/{children[child]}", "value": child, "id": children[child]}
            return out
        if kind == "sprint":
            sprints = [next(sp for sp in SPRINTS if sp.id == i) for i in value]
            return [_sprint_json(sp) if self.cloud else _greenhopper_sprint(sp) for sp in sprints]
        if kind == "users":
            return [self.user_json(name, ctx) for name in value]
        if kind == "user":
            return self.user_json(value, ctx)
        if kind == "group":
            out = {"name": value, "self": f"{ctx.base}/rest/api/{ctx.api}/group?groupname={quote(value)}"}
            if self.cloud:
                out["groupId"] = hashlib.sha1(value.encode()).hexdigest()[:8] + "-0000-4000-8000-000000000000"
            return out
        if kind == "textarea":
            return self._rich(value, ctx)
        return value

    def _type_json(self, issue: Issue, ctx: Ctx) -> dict[str, Any]:
        itype = self.site.issue_type(issue)
        icon = "subtask" if itype.subtask else itype.name.lower()
        out = {
            "self": f"{ctx.base}/rest/api/{ctx.api}/issuetype/{itype.id}",
            "id": itype.id,
            "description": itype.description,
            "iconUrl": f"{ctx.base}/secure/viewavatar?avatarId=10300&avatarType=issuetype&type={icon}",
            "name": itype.name,
            "subtask": itype.subtask,
            "avatarId": 10300,
        }
        if self.cloud:
            out["hierarchyLevel"] = itype.hierarchy_level
        return out

    def _status_json(self, issue: Issue, ctx: Ctx) -> dict[str, Any]:
        status = self.site.status(issue)
        icon = {"new": "open", "indeterminate": "inprogress", "done": "closed"}[status.category_key]
        return {
            "self": f"{ctx.base}/rest/api/{ctx.api}/status/{status.id}",
            "description": "",
            "iconUrl": f"{ctx.base}/images/icons/statuses/{icon}.png",
            "name": status.name,
            "id": status.id,
            "statusCategory": {
                "self": f"{ctx.base}/rest/api/{ctx.api}/statuscategory/{status.category_id}",
                "id": status.category_id,
                "key": status.category_key,
                "colorName": status.color,
                "name": status.category_name,
            },
        }

    def _priority_json(self, name: str | None, ctx: Ctx) -> dict[str, Any] | None:
        priority = self.site.find_priority(name) if name else None
        if priority is None:
            return None
        return {
            "self": f"{ctx.base}/rest/api/{ctx.api}/priority/{priority.id}",
            "iconUrl": f"{ctx.base}/images/icons/priorities/{priority.name.lower()}.svg",
            "name": priority.name,
            "id": priority.id,
        }

    def user_json(self, username: str, ctx: Ctx) -> dict[str, Any]:
        user = self.site.find_user(username)
        assert user is not None, username
        avatar = f"{ctx.base}/secure/useravatar?ownerId={quote(user.key)}&avatarId=10122"
        avatars = {size: f"{avatar}&size={size}" for size in ("48x48", "24x24", "16x16", "32x32")}
        if self.cloud:
            return {
                "self": f"{ctx.base}/rest/api/{ctx.api}/user?accountId={user.account_id}",
                "accountId": user.account_id,
                "emailAddress": user.email,
                "avatarUrls": avatars,
                "displayName": user.display_name,
                "active": user.active,
                "timeZone": "UTC",
                "accountType": "atlassian",
            }
        return {
            "self": f"{ctx.base}/rest/api/2/user?username={quote(user.name)}",
            "name": user.name,
            "key": user.key,
            "emailAddress": user.email,
            "avatarUrls": avatars,
            "displayName": user.display_name,
            "active": user.active,
            "timeZone": "UTC",
        }

    def _project_json(self, key: str, ctx: Ctx) -> dict[str, Any]:
        project = self.site.projects[key]
        avatar = f"{ctx.base}/secure/projectavatar?pid={project.id}&avatarId=10324"
        return {
            "self": f"{ctx.base}/rest/api/{ctx.api}/project/{project.id}",
            "id": project.id,
            "key": project.key,
            "name": project.name,
            "projectTypeKey": "software",
            "simplified": False,
            "avatarUrls": {size: f"{avatar}&size={size}" for size in ("48x48", "24x24", "16x16", "32x32")},
        }

    def _ref_json(self, issue: Issue, ctx: Ctx) -> dict[str, Any]:
        """An issue as ``parent``, ``subtasks`` and ``issuelinks`` show it."""
        return {
            "id": str(issue.id),
            "key": issue.key,
            "self": f"{ctx.base}/rest/api/{ctx.api}/issue/{issue.id}",
            "fields": {
                "summary": issue.summary,
                "status": self._status_json(issue, ctx),
                "priority": self._priority_json(issue.priority, ctx),
                "issuetype": self._type_json(issue, ctx),
            },
        }

    def _other_visible(self, link: Link, issue: Issue, ctx: Ctx) -> bool:
        other = link.target if link.source == issue.key else link.source
        return self.site.issues[other].project in ctx.visible

    def _link_json(self, link: Link, issue: Issue, ctx: Ctx) -> dict[str, Any]:
        outward = link.source == issue.key
        other = self.site.issues[link.target if outward else link.source]
        ltype = link.type
        return {
            "id": str(link.id),
            "self": f"{ctx.base}/rest/api/{ctx.api}/issueLink/{link.id}",
            "type": {
                "id": ltype.id,
                "name": ltype.name,
                "inward": ltype.inward,
                "outward": ltype.outward,
                "self": f"{ctx.base}/rest/api/{ctx.api}/issueLinkType/{ltype.id}",
            },
            "outwardIssue" if outward else "inwardIssue": self._ref_json(other, ctx),
        }

    def _agile_epic(self, issue: Issue, ctx: Ctx) -> dict[str, Any] | None:
        epic_key = issue.epic if not self.cloud else issue.parent
        epic = self.site.issues.get(epic_key) if epic_key else None
        if epic is None or epic.type != "Epic":
            return None
        return {
            "id": epic.id,
            "key": epic.key,
            "self": f"{ctx.base}/rest/agile/1.0/epic/{epic.id}",
            "name": epic.custom.get(EPIC_NAME_FIELD, epic.summary),
            "summary": epic.summary,
            "color": {"key": "color_1"},
            "done": epic.status == "Done",
        }


def _duration(seconds: int) -> str:
    """Seconds as Jira writes estimates: ``1w 2d 3h 30m`` (8-hour days, 5-day weeks)."""
    parts, rest = [], seconds
    for size, unit in ((5 * 8 * 3600, "w"), (8 * 3600, "d"), (3600, "h"), (60, "m")):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts) or "0m"


def _sprint_json(sprint: Sprint) -> dict[str, Any]:
    """A sprint as Cloud's sprint field holds it."""
    out: dict[str, Any] = {"id": sprint.id, "name": sprint.name, "state": sprint.state, "boardId": sprint.board}
    out["goal"] = sprint.goal
    if sprint.start:
        out["startDate"], out["endDate"] = sprint.start, sprint.end
    if sprint.state == "closed":
        out["completeDate"] = sprint.end
    return out


def _greenhopper_sprint(sprint: Sprint) -> str:
    """A sprint as Data Center's REST API writes it: the ``toString()`` of its Java object."""
    digest = hashlib.sha1(sprint.name.encode()).hexdigest()[:8]
    complete = sprint.end if sprint.state == "closed" else "<null>"
    return (
        f"com.atlassian.greenhopper.service.sprint.Sprint@{digest}[id={sprint.id},rapidViewId={sprint.board},"
        f"state={sprint.state.upper()},name={sprint.name},startDate={sprint.start or '<null>'},"
        f"endDate={sprint.end or '<null>'},completeDate={complete},activatedDate={sprint.start or '<null>'},"
        f"sequence={sprint.id},goal={sprint.goal},autoStartStop=false,synced=false]"
    )


def _versions_json(names: list[str] | None, api: str, version: str) -> list[dict[str, Any]]:
    out = []
    for vid, name, released, release_date in VERSIONS:
        if name in (names or []):
            entry: dict[str, Any] = {
                "self": f"{api}/version/{vid}",
                "id": vid,
                "description": "",
                "name": name,
                "archived": False,
                "released": released,
            }
            if release_date:
                entry["releaseDate"] = release_date
            out.append(entry)
    return out


def _named_json(table: dict[str, tuple[str, str]], resource: str) -> Callable[[Any, str, str], Any]:
    def render(name: Any, api: str, version: str) -> Any:
        if name is None:
            return None
        ident, description = table[name]
        return {"self": f"{api}/{resource}/{ident}", "id": ident, "description": description, "name": name}

    return render


_DETAIL_RENDERERS: dict[str, Callable[[Any, str, str], Any]] = {
    "fixVersions": _versions_json,
    "versions": _versions_json,
    "components": lambda names, api, v: [
        {"self": f"{api}/component/{COMPONENTS[n]}", "id": COMPONENTS[n], "name": n} for n in names or []
    ],
    "duedate": lambda value, api, v: value,
    "resolution": _named_json(RESOLUTIONS, "resolution"),
    "security": _named_json(SECURITY_LEVELS, "securitylevel"),
    "environment": lambda text, api, v: adf_document(text) if v == "3" else text,
}
_TIME_FIELDS = frozenset(
    {"timetracking", "timeoriginalestimate", "timeestimate", "timespent", "aggregatetimespent", "progress"}
    | {"workratio"}
)
_OTHER_SYSTEM_FIELDS = frozenset(
    {*_DETAIL_RENDERERS, *_TIME_FIELDS, "creator", "statusCategory", "resolutiondate", "votes", "watches"}
    | {"comment", "worklog", "attachment"}
)
