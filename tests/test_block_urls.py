"""Site URLs of credential blocks: refused, clearly and without echoing a password, unless usable."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from atlasflow.blocks import ConfluenceCredentials, JiraCredentials


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("https://ops:hunter2secret@jira.example.com", "must not contain a user name or password"),
        ("https://ops@jira.example.com", "must not contain a user name or password"),
        ("jira.example.com", "must start with https://"),
        ("ftp://jira.example.com", "must start with https://"),
        ("file:///etc/passwd", "must start with https://"),
        ("https://", "has no host name"),
    ],
)
@pytest.mark.parametrize("block", [JiraCredentials, ConfluenceCredentials])
def test_unusable_site_urls_are_refused(block: type[JiraCredentials], url: str, said: str) -> None:
    with pytest.raises(ValidationError) as caught:
        block(url=url, username="u@example.com", token="tokNOTECHOED")
    message = str(caught.value)
    assert said in message
    assert "hunter2secret" not in message and "tokNOTECHOED" not in message


def test_usable_site_urls_are_kept() -> None:
    for url in ("https://acme.atlassian.net", "http://127.0.0.1:8080/jira", " https://acme.atlassian.net/wiki "):
        assert JiraCredentials(url=url, token="tok-long-enough").url == url.strip()
