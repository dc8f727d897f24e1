"""Chat text: mentions defused, markup escaped, posts within the limit."""

from __future__ import annotations

import html
import re

import httpx
import pytest
from markdown_it import MarkdownIt

from atlasflow.formats.messages import MATTERMOST_POST_LIMIT, describe_figures, figure_text, fit_post, inert
from atlasflow.sandbox.app import Sandbox

MENTION = re.compile(r"(?<![\w@])@(channel|all|here|[a-z][\w.-]*)", re.IGNORECASE)


@pytest.mark.parametrize("text", ["@channel look", "ping @all now", "@here", "cc @jsmith.", "x(@channel)"])
def test_mentions_are_defused(text: str) -> None:
    out = inert(text)
    assert not MENTION.search(out), out
    assert out.replace("\u200b", "").replace("\\", "") == text


def test_markdown_cannot_break_out() -> None:
    out = inert("```\n# Title\n| a | b |\n[click](http://evil) **bold** <script>")
    assert "\n" not in out
    assert "```" not in out and "[click](" not in out and "**" not in out and "|" not in out.replace("\\|", "")
    assert "<script>" not in out


@pytest.mark.parametrize("text", ["&#64;channel", "&#x40;all", "&commat;here", "a &amp; b", "&lt;!channel&gt;"])
def test_entities_render_as_typed_not_as_what_they_encode(text: str) -> None:
    rendered = MarkdownIt("commonmark").renderInline(inert(text))
    assert html.unescape(rendered).replace("\u200b", "") == text
    assert not MENTION.search(html.unescape(rendered))


def test_long_text_is_cut() -> None:
    assert len(inert("x" * 1000, limit=50)) == 50


def test_fit_post_keeps_the_limit_and_says_so() -> None:
    text = "y" * (MATTERMOST_POST_LIMIT + 10)
    fitted = fit_post(text)
    assert len(fitted) <= MATTERMOST_POST_LIMIT
    assert fitted.endswith("(shortened to fit the post limit)")
    assert fit_post("short") == "short"


def test_figures_read_as_words() -> None:
    text = describe_figures(
        {
            "issues": 12,
            "by_level": {"0": 1, "1": 11},
            "root_tickets": ["DEMO-1", "DEMO-2"],
            "written": False,
            "seconds": 2.5,
            "errors": [],
            "would_refuse": None,
            "who": "@all",
        }
    )
    assert text == (
        "issues: 12 · by level: 0: 1, 1: 11 · root tickets: DEMO-1, DEMO-2 · written: no · seconds: 2.5"
        " · who: @\u200ball"
    )
    assert "None" not in text and "{" not in text and "[" not in text
    assert not MENTION.search(text)


def test_secret_looking_parameters_are_never_shown() -> None:
    text = describe_figures({"api_token": "s3cr3t", "password": "hunter2", "jira_block": "jira"})
    assert "s3cr3t" not in text and "hunter2" not in text
    assert "api token: \\*\\*\\*" in text and "jira block: jira" in text


def test_figure_text_shortens_long_lists_and_marks_empty() -> None:
    assert figure_text(list(range(15))) == "0, 1, 2, 3, 4, 5, 6, 7, 8, 9 (+5 more)"
    assert figure_text(None) == figure_text("") == figure_text({}) == "–"
    assert figure_text([{"key": "A"}, {"key": "B"}]) == "2 item(s)"
    assert figure_text({"Done": 3, "Open": None}) == "Done: 3"


@pytest.mark.parametrize(
    "text", ["@channel", "<!channel> now", "<!here>", "\\@all", "@jsmith: ping", "`x` @here `y`", "**@all**"]
)
def test_mattermost_sees_a_mention_in_the_raw_text_and_none_in_the_inert_one(cloud_sandbox: Sandbox, text: str) -> None:
    hook = cloud_sandbox.mattermost_hook_url
    httpx.post(hook, json={"text": text}).raise_for_status()
    assert cloud_sandbox.mattermost.mentions(), f"Mattermost would not ping for {text!r}: a useless case"
    cloud_sandbox.mattermost.clear()
    httpx.post(hook, json={"text": inert(text)}).raise_for_status()
    assert cloud_sandbox.mattermost.mentions() == {}
