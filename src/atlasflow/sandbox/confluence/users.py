"""The people of the Confluence stand-in: their Cloud account ids (the same as in the sandbox's Jira), Data
Center user keys, user links in storage format, and user JSON."""

from __future__ import annotations

import hashlib
from typing import Any

from atlasflow.sandbox.core import Mode
from atlasflow.sandbox.identity import account_id


def cloud_account_id(username: str) -> str:
    return account_id(username)  # the same person's id in the sandbox's Jira


def user_key(username: str) -> str:
    return hashlib.md5(username.encode()).hexdigest()


def user_ref(mode: Mode, username: str) -> str:
    if mode == "cloud":
        return f'<ri:user ri:account-id="{cloud_account_id(username)}" />'
    return f'<ri:user ri:userkey="{user_key(username)}" />'


def user_json(mode: Mode, base: str, display_name: str, username: str) -> dict[str, Any]:
    if mode == "cloud":
        account_id = cloud_account_id(username)
        return {
            "type": "known",
            "accountId": account_id,
            "accountType": "atlassian",
            "email": "",
            "publicName": display_name,
            "profilePicture": {
                "path": f"/wiki/aa-avatar/{account_id}",
                "width": 48,
                "height": 48,
                "isDefault": False,
            },
            "displayName": display_name,
            "isExternalCollaborator": False,
            "isGuest": False,
            "locale": "en_US",
            "accountStatus": "active",
            "_expandable": {"operations": "", "personalSpace": ""},
            "_links": {"self": f"{base}/rest/api/user?accountId={account_id}"},
        }
    key = user_key(username)
    return {
        "type": "known",
        "username": username,
        "userKey": key,
        "profilePicture": {
            "path": "/images/icons/profilepics/default.svg",
            "width": 48,
            "height": 48,
            "isDefault": True,
        },
        "displayName": display_name,
        "_links": {"self": f"{base}/rest/api/user?key={key}"},
        "_expandable": {"status": ""},
    }
