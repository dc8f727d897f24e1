"""One sandbox instance: the Jira, Confluence and Mattermost stand-ins behind one local HTTP server."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware

from atlasflow.sandbox.confluence import ConfluenceSite, confluence_routes, confluence_v2_routes
from atlasflow.sandbox.confluence.attachments import AttachmentStore, attachment_routes
from atlasflow.sandbox.core import Mode, SandboxMiddleware, SandboxState, admin_routes
from atlasflow.sandbox.identity import identity_routes
from atlasflow.sandbox.jira import JiraSite, jira_routes
from atlasflow.sandbox.mattermost import MattermostLog, mattermost_routes


@dataclass
class Sandbox:
    """A local Jira + Confluence + Mattermost stand-in on 127.0.0.1.

    Example:
        >>> with Sandbox(mode="cloud") as sb:  # doctest: +SKIP
        ...     print(sb.url, sb.jira_url, sb.confluence_url)
    """

    mode: Mode = "cloud"
    port: int = 0
    jira: JiraSite | None = None
    confluence: ConfluenceSite | None = None
    mattermost: MattermostLog = field(default_factory=MattermostLog)
    attachments: AttachmentStore = field(default_factory=AttachmentStore)

    def __post_init__(self) -> None:
        self.state = SandboxState(mode=self.mode)
        if self.jira is None:
            self.jira = JiraSite.demo(self.mode)
        if self.confluence is None:
            self.confluence = ConfluenceSite.demo(self.mode)
        self.attachments.id_prefix = "att" if self.mode == "cloud" else ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def app(self) -> Starlette:
        assert self.jira is not None and self.confluence is not None
        routes = [
            *admin_routes(self.state),
            *identity_routes(self.state),
            *jira_routes(self.jira, self.state),
            *confluence_routes(self.confluence, self.state),
            *attachment_routes(self.confluence, self.attachments, self.state),
            *(confluence_v2_routes(self.confluence, self.state) if self.mode == "cloud" else []),
            *mattermost_routes(self.mattermost, self.state),
        ]
        return Starlette(routes=routes, middleware=[Middleware(SandboxMiddleware, state=self.state)])

    @property
    def url(self) -> str:
        """Base URL of the server, e.g. ``http://127.0.0.1:41234``."""
        if self._server is None:
            raise RuntimeError("sandbox is not running")
        sock = self._server.servers[0].sockets[0]
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    @property
    def jira_url(self) -> str:
        return self.url

    @property
    def confluence_url(self) -> str:
        """Confluence base URL: Cloud sites live under ``/wiki``."""
        return f"{self.url}/wiki" if self.mode == "cloud" else self.url

    @property
    def gateway_url(self) -> str:
        """The stand-in for ``https://api.atlassian.com`` (Cloud): the same server, ``/ex/...`` paths."""
        return self.url

    @property
    def oauth_token_url(self) -> str:
        """The token endpoint of service accounts: ``auth.atlassian.com``'s on Cloud, the site's on DC."""
        return f"{self.url}/oauth/token" if self.mode == "cloud" else f"{self.url}/rest/oauth2/latest/token"

    @property
    def mattermost_hook_url(self) -> str:
        return f"{self.url}/hooks/{self.mattermost.hook_token}"

    def config_yaml(self) -> str:
        """A ``config.yaml`` for ``atlasflow configure`` pointing every block at this sandbox, with the
        environment variables it reads on the first line (the demo account's, the webhook's and the bot's tokens)."""
        port = int(self.url.rsplit(":", 1)[1])
        wiki = "   # Cloud sites serve Confluence under /wiki" if self.mode == "cloud" else ""
        return (
            f"# export SANDBOX_TOKEN=sandbox-token SANDBOX_HOOK_TOKEN={self.mattermost.hook_token} "
            f"SANDBOX_BOT_TOKEN={self.mattermost.bot_token}\n"
            "jira:\n"
            "  block: jira\n"
            f"  url: {self.jira_url}\n"
            f"  deployment: {self.mode}            # 127.0.0.1 is not *.atlassian.net: say which it is\n"
            "  username: demo@example.com\n"
            "  token_env: SANDBOX_TOKEN\n"
            "confluence:\n"
            "  block: confluence\n"
            f"  url: {self.confluence_url}{wiki}\n"
            f"  deployment: {self.mode}\n"
            "  username: demo@example.com\n"
            "  token_env: SANDBOX_TOKEN\n"
            "mattermost:\n"
            "  block: mattermost\n"
            "  hostname: 127.0.0.1\n"
            f"  port: {port}\n"
            "  secure: false                # plain http\n"
            "  token_env: SANDBOX_HOOK_TOKEN  # the id at the end of the incoming webhook URL\n"
            "mattermost_bot:                  # posts files: post_to_channel=acme/reports\n"
            "  block: mattermost-bot\n"
            f"  url: {self.url}\n"
            "  team: acme\n"
            "  token_env: SANDBOX_BOT_TOKEN\n"
        )

    def start(self) -> Sandbox:
        config = uvicorn.Config(
            self.app(),
            host="127.0.0.1",
            port=self.port,
            log_level="critical",
            lifespan="off",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="atlasflow-sandbox", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox failed to start on port {self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
