"""Headers every answer carries, pages and API alike.

- ``X-Frame-Options: DENY``: no other site shows certflow's pages in a frame, where a visitor
  could be tricked into clicking its one-click forms (erasure, take-over, deploy) unseen.
  The studio's mail preview is an ``<iframe srcdoc>``, which has no answer of its own and so
  is not held to it.
- ``Referrer-Policy: same-origin``: a link out of a task or case page does not tell the other
  site its address (task and case ids).
- ``X-Content-Type-Options: nosniff``: what is served as one type is not read as another.
- ``Strict-Transport-Security``, when the site is served over https (``public_url``): the
  browser keeps to https from then on, so the session cookie never travels over http.

A header an answer set itself is left as it is.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

BASE = ((b"x-frame-options", b"DENY"), (b"referrer-policy", b"same-origin"),
        (b"x-content-type-options", b"nosniff"))
HSTS = (b"strict-transport-security", b"max-age=31536000")


class SecurityHeaders:
    def __init__(self, app: ASGIApp, https: bool) -> None:
        self.app = app
        self.headers = (*BASE, HSTS) if https else BASE

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in self.headers if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)
