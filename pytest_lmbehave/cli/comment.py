"""`lmbehave comment --repo OWNER/NAME --pr N --body drift.md`: one sticky comment on a pull request, updated rather
than posted again. It finds its earlier comment by a hidden marker (every page of the pull request's comments), and
updates it, or creates one. A token that may not write (a fork's, Dependabot's) is said, and the job summary stands
alone: that is not a failure. GitHub's REST API, with the standard library only (the command runs without torch)."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKER = "<!-- pytest-lmbehave drift report -->"
API = "https://api.github.com"
NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


Send = Callable[[str, str, dict[str, Any] | None], Answer]  # method, URL, JSON body -> the answer


def sender(token: str) -> Send:
    """Requests to GitHub's REST API with ``token``, as its documentation shows them."""

    def send(method: str, url: str, body: dict[str, Any] | None) -> Answer:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/vnd.github+json")
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("X-GitHub-Api-Version", "2022-11-28")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return Answer(response.status, dict(response.headers), json.loads(response.read() or b"null"))
        except urllib.error.HTTPError as error:
            return Answer(error.code, dict(error.headers), json.loads(error.read() or b"null"))

    return send


class CannotWrite(Exception):
    """The token may read but not write (403, or 404 for a private repository it cannot see)."""


def sticky(send: Send, repo: str, pr: int, body: str, api: str = API) -> tuple[str, int]:
    """Creates or updates the pull request's one comment of ours: ('created' or 'updated', its id)."""
    text = f"{MARKER}\n{body}"
    url: str | None = f"{api}/repos/{repo}/issues/{pr}/comments?per_page=100"
    found = None
    while url and found is None:
        answer = send("GET", url, None)
        _check(answer, "list the pull request's comments")
        found = next((c["id"] for c in answer.body if MARKER in str(c.get("body", ""))), None)
        link = NEXT.search(answer.headers.get("Link", answer.headers.get("link", "")))
        url = link.group(1) if link else None
    if found is not None:
        answer = send("PATCH", f"{api}/repos/{repo}/issues/comments/{found}", {"body": text})
        _check(answer, "update the comment")
        return "updated", int(found)
    answer = send("POST", f"{api}/repos/{repo}/issues/{pr}/comments", {"body": text})
    _check(answer, "create the comment")
    return "created", int(answer.body["id"])


def _check(answer: Answer, doing: str) -> None:
    if answer.status in (401, 403, 404):
        message = answer.body.get("message", "") if isinstance(answer.body, dict) else ""
        raise CannotWrite(f"could not {doing}: HTTP {answer.status} {message}".rstrip())
    if not 200 <= answer.status < 300:
        raise RuntimeError(f"could not {doing}: HTTP {answer.status} {answer.body}")


def run(args: argparse.Namespace) -> int:
    token = os.environ.get(args.token_env, "")
    body = Path(args.body)
    if not body.is_file():
        print(
            f"lmbehave comment: {body}: no such file; write it with lmbehave diff ... --markdown {body}",
            file=sys.stderr,
        )
        return 2
    if not token:
        print(f"lmbehave comment: ${args.token_env} is empty; the job summary stands alone", file=sys.stderr)
        return 0
    try:
        done, number = sticky(sender(token), args.repo, args.pr, body.read_text(encoding="utf-8"), args.api)
    except CannotWrite as error:
        print(f"lmbehave comment: {error}; this token may not write (a fork or Dependabot): the job summary stands "
              "alone", file=sys.stderr)  # fmt: skip
        return 0
    except (RuntimeError, OSError) as error:
        print(f"lmbehave comment: {error}", file=sys.stderr)
        return 1
    print(f"lmbehave comment: {done} comment {number} on {args.repo}#{args.pr}")
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", required=True, help="the repository, OWNER/NAME")
    parser.add_argument("--pr", required=True, type=int, help="the pull request's number")
    parser.add_argument("--body", required=True, help="the markdown to post (lmbehave diff --markdown)")
    parser.add_argument(
        "--token-env", default="GITHUB_TOKEN", help="the environment variable holding the token (default GITHUB_TOKEN)"
    )
    parser.add_argument("--api", default=API, help=f"the REST API's base URL (default {API})")
