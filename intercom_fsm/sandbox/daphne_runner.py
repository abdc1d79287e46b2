"""Serving the ASGI app with daphne until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

# daphne.server installs Twisted's asyncio reactor when imported: import it
# before anything else imports Twisted.
import daphne.server  # isort: skip
from daphne.endpoints import build_endpoint_description_strings  # isort: skip
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol  # isort: skip

logger = logging.getLogger(__name__)

# RFC 6455 codes a server may send that autobahn's sendClose refuses (it takes
# only 1000 and 3000-4999); tests need 1011 to check that the client treats an
# internal error as transient.
PROTOCOL_CLOSE_CODES = frozenset([*range(1001, 1004), *range(1007, 1015)])


class _AnyCloseCodeProtocol(WebSocketProtocol):  # type: ignore[misc]
    def serverClose(self, code: int | None = None) -> None:
        if code in PROTOCOL_CLOSE_CODES:
            self.sendCloseFrame(code=code, isReply=False)
        else:
            super().serverClose(code=code)


def serve(
    application: Any, host: str, port: int, on_listening: Callable[[int], Callable[[], None]]
) -> bool:
    """Run daphne on ``host``:``port`` (0 picks a free port) until SIGINT or SIGTERM.

    ``on_listening`` gets the bound port before the first request is served and
    returns what to run once the server runs. False when it could not listen.
    """
    from twisted.internet import reactor

    WebSocketFactory.protocol = _AnyCloseCodeProtocol
    server: Any = None

    def ready() -> None:
        bound_port = server.listening_addresses[0][1]
        reactor.callWhenRunning(on_listening(bound_port))

    server = daphne.server.Server(
        application=application,
        endpoints=build_endpoint_description_strings(host=host, port=port),
        signal_handlers=True,
        ready_callable=ready,
        verbosity=0,
        websocket_timeout=86400,
        ping_interval=20,
        ping_timeout=30,
        application_close_timeout=5,
    )
    server.run()
    return bool(server.listening_addresses)
