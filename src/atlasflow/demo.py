"""``atlasflow demo``: the main jobs end to end against the local sandbox and Prefect's local server.

Export a Jira hierarchy to Excel, sync the exported issues into a Confluence table, then report every run
into the results table and to Mattermost. Blocks are saved under ``sandbox-*`` names so that real blocks
are never overwritten.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, cast, get_args

from prefect.blocks.notifications import MattermostWebhook
from prefect.filesystems import LocalFileSystem
from pydantic import SecretStr

from atlasflow.blocks import ConfluenceCredentials, JiraCredentials, MattermostBot
from atlasflow.files import REPORTS_ROOT_ENV
from atlasflow.formats.confluence_tables import read_table
from atlasflow.runtime.notify import NOTIFIER_ENV
from atlasflow.sandbox.app import Sandbox
from atlasflow.sandbox.confluence import EXPORT_SUMMARY_ID, JOB_RESULTS_ID

JIRA_BLOCK = "sandbox-jira"
CONFLUENCE_BLOCK = "sandbox-confluence"
MATTERMOST_BLOCK = "sandbox-mattermost"
BLOCK_PREFIX = "sandbox-"
DEMO_USER, DEMO_TOKEN, DEMO_SCOPED_TOKEN = "demo@example.com", "sandbox-token", "sandbox-scoped-token"
DEMO_CLIENT_ID, DEMO_CLIENT_SECRET = "sandbox-client-id", "sandbox-client-secret"

SandboxAuth = Literal["token", "scoped", "oauth"]
"""How the sandbox blocks sign in: ``token`` = classic API token on Cloud, personal access token on Data
Center; ``scoped`` = API token with scopes through the gateway (Cloud; Data Center has none: a PAT);
``oauth`` = the service account's OAuth 2.0 client credentials."""
AUTH_ENV = "ATLASFLOW_SANDBOX_AUTH"
"""Environment variable choosing :data:`SandboxAuth` for the sandbox blocks (tests, demo); default ``token``."""


def sandbox_auth() -> SandboxAuth:
    """The credential kind :data:`AUTH_ENV` asks for.

    Raises:
        ValueError: An unknown kind.
    """
    value = os.environ.get(AUTH_ENV, "token")
    if value in get_args(SandboxAuth):
        return cast(SandboxAuth, value)
    raise ValueError(f"{AUTH_ENV}={value!r}: expected one of {', '.join(get_args(SandboxAuth))}")


def sandbox_credentials(sb: Sandbox, auth: SandboxAuth) -> dict[str, Any]:
    """Credential fields of a Jira/Confluence block signing in to the sandbox with ``auth``."""
    common: dict[str, Any] = {"deployment": sb.mode, "timeout_seconds": 10, "gateway_url": sb.gateway_url}
    if auth == "oauth":
        secret = SecretStr(DEMO_CLIENT_SECRET)
        token_url = sb.oauth_token_url if sb.mode == "cloud" else None  # DC: the default, <site>/rest/oauth2/…
        return common | {"client_id": DEMO_CLIENT_ID, "client_secret": secret, "oauth_token_url": token_url}
    if sb.mode == "datacenter":
        return common | {"token": SecretStr(DEMO_TOKEN)}
    token = DEMO_SCOPED_TOKEN if auth == "scoped" else DEMO_TOKEN
    return common | {"username": DEMO_USER, "token": SecretStr(token)}


def save_sandbox_blocks(sb: Sandbox, prefix: str = "sandbox-", auth: SandboxAuth | None = None) -> None:
    """Blocks ``{prefix}jira``, ``{prefix}confluence``, ``{prefix}mattermost`` (webhook) and
    ``{prefix}mattermost-bot`` (the bot, team ``acme``) pointing at the sandbox.

    Args:
        sb: The running sandbox.
        prefix: Block name prefix.
        auth: Credential kind; default from :data:`AUTH_ENV`.
    """
    fields = sandbox_credentials(sb, auth or sandbox_auth())
    JiraCredentials(url=sb.jira_url, **fields).save(f"{prefix}jira", overwrite=True)
    ConfluenceCredentials(url=sb.confluence_url, **fields).save(f"{prefix}confluence", overwrite=True)
    port = int(sb.url.rsplit(":", 1)[1])
    MattermostWebhook(
        hostname="127.0.0.1", port=port, token=SecretStr(sb.mattermost.hook_token), secure=False, botname="atlasflow"
    ).save(f"{prefix}mattermost", overwrite=True)
    MattermostBot(url=sb.url, token=SecretStr(sb.mattermost.bot_token), team="acme", timeout_seconds=10).save(
        f"{prefix}mattermost-bot", overwrite=True
    )


_AUTH_NAMES = {
    ("cloud", "token"): "a classic API token at the site",
    ("cloud", "scoped"): "a scoped API token through the gateway",
    ("cloud", "oauth"): "a service account (OAuth 2.0) through the gateway",
    ("datacenter", "token"): "a personal access token",
    ("datacenter", "scoped"): "a personal access token (Data Center has no scoped tokens)",
    ("datacenter", "oauth"): "a service account (OAuth 2.0)",
}


def _demo_storage(output_dir: Path) -> str:
    """A local filesystem block standing in for shared storage (S3, SMB ...): ``storage`` in the demo folder."""
    LocalFileSystem(basepath=str((output_dir / "storage").resolve())).save(f"{BLOCK_PREFIX}exports", overwrite=True)
    return f"local-file-system/{BLOCK_PREFIX}exports"


def run_demo(output_dir: Path, mode: str = "cloud", auth: SandboxAuth | None = None) -> int:
    from atlasflow.flows.confluence_table_sync import confluence_table_sync
    from atlasflow.flows.jira_export import jira_export
    from atlasflow.flows.report_results import report_results

    with Sandbox(mode=mode) as sb:  # type: ignore[arg-type]
        kind = auth or sandbox_auth()
        print(f"sandbox ({mode}, signing in with {_AUTH_NAMES[mode, kind]}) on {sb.url}", flush=True)
        save_sandbox_blocks(sb, auth=kind)
        os.environ[NOTIFIER_ENV] = f"mattermost-webhook/{MATTERMOST_BLOCK}"
        os.environ[REPORTS_ROOT_ENV] = str(output_dir.resolve())  # the demo's files stay in its own folder
        export = jira_export(
            root_tickets=["DEMO-1"],
            fields=["Story Points", "Team"],
            include_links=True,
            output_dir=str(output_dir),
            jira_block=JIRA_BLOCK,
            attach_to_page=EXPORT_SUMMARY_ID,
            confluence_block=CONFLUENCE_BLOCK,
            post_to_channel="acme/reports",
            mattermost_block=f"{BLOCK_PREFIX}mattermost-bot",
            storage_block=_demo_storage(output_dir),
        )
        sync = confluence_table_sync(
            page_id=EXPORT_SUMMARY_ID,
            table="Exported tickets",
            key_column="Key",
            source=export["path"],
            sheet="Child Issues",
            columns=["Summary", "Status", "Assignee"],
            confluence_block=CONFLUENCE_BLOCK,
        )
        report = report_results(
            confluence_page_id=JOB_RESULTS_ID,
            table="Results",
            notifier_block=f"mattermost-webhook/{MATTERMOST_BLOCK}",
            confluence_block=CONFLUENCE_BLOCK,
            watermark_variable="atlasflow_demo_report_watermark",
            settle_seconds=0,
        )
        assert sb.confluence is not None
        results = read_table(sb.confluence.page(JOB_RESULTS_ID).body, "Results")
        posts = sb.mattermost.posts
    print()
    print(f"Workbook:   {export['path']}")
    print(f"            {export['issues']} issues by level {export['by_level']}, {export['requests']} Jira requests")
    print("Delivered:  " + "\n            ".join(export["delivered"]))
    print("            (the attachment, the post in acme/reports, the storage copy; sandbox links open while it runs)")
    print(
        f"Confluence: page {EXPORT_SUMMARY_ID} 'Exported tickets': {sync['added']} added, "
        f"{sync['updated']} updated (version {sync['version']})"
    )
    print(
        f"            page {JOB_RESULTS_ID} 'Results' table now holds {len(results.rows)} run(s) "
        f"({report['added']} added by this report):"
    )
    for row in results.rows:
        print(f"              {row['Job']:<24} {row['State']:<10} {row['Duration']:>8}  {row['Run ID']}")
    print(f"Mattermost: {len(posts)} post(s) to the sandbox (webhook notifications, bot file posts):")
    for post in posts:
        files = f" [+{len(post.file_ids)} file]" if post.file_ids else ""
        print(f"              {post.source:<8}" + (post.text or "").splitlines()[0][:90] + files)
    return 0
