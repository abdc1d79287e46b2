"""The sandbox's own public URLs, known only once daphne listens (``--port 0`` picks the port).

Plain Python; set once by :mod:`intercom_fsm.sandbox.server` before the first
request is served, read by the device authorization endpoint.
"""

from __future__ import annotations

from intercom_fsm.sandbox.options import SandboxUrls

_published: SandboxUrls | None = None


def publish(urls: SandboxUrls) -> None:
    global _published
    _published = urls


def urls() -> SandboxUrls:
    if _published is None:
        raise RuntimeError("the sandbox's URLs are not known before it listens")
    return _published
