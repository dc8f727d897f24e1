"""Page history through the real API shapes: a page as of an earlier version, with its author."""

from __future__ import annotations

from atlasflow.blocks import ConfluenceCredentials
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.confluence import JOB_INBOX_ID


def test_an_earlier_version_and_its_author_are_read_back(sandbox: Sandbox) -> None:
    assert sandbox.confluence is not None
    first = sandbox.confluence.page(JOB_INBOX_ID)
    sandbox.confluence.edit_page(JOB_INBOX_ID, first.body + "<p>added by Mallory</p>", by="Mallory Editor")
    client = ConfluenceCredentials(
        url=sandbox.confluence_url, username="demo@example.com", token="sandbox-token", deployment=sandbox.mode
    ).get_client()
    try:
        old, new = client.page_version(JOB_INBOX_ID, 1), client.page_version(JOB_INBOX_ID, 2)
        assert (old.number, old.body, new.number) == (1, first.body, 2)
        assert "added by Mallory" in new.body
        if sandbox.mode == "cloud":
            assert old.author_name == "" and len(new.author) == 24  # an account id, named through users-bulk
            names = client.display_names([old.author, new.author, "no-such-account"])
            assert names == {old.author: "Demo Admin", new.author: "Mallory Editor"}
        else:
            assert (old.author, old.author_name) == ("demo@example.com", "Demo Admin")
            assert new.author_name == "Mallory Editor"
    finally:
        client.close()
    paths = {e.path for e in sandbox.state.log.entries}
    assert any("/api/v2/pages/" in p for p in paths) == (sandbox.mode == "cloud")
