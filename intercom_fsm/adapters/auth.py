"""The auth adapter: device authorization, token polling and refresh over HTTP.

:class:`AuthClient` speaks protocol.md section 1 with aiohttp and turns every
answer into one of the machine's typed events. Its three calls never raise
(cancellation aside): a network error, a timeout, a 5xx, a 429 or a body that
does not parse becomes :class:`AuthTransientError`, whose reason names the
operation and the problem and is scrubbed of the client secret, the device
code and the refresh token.

What counts as what (the table is in :mod:`.auth_responses`): 5xx, 429, a
network error or a timeout are :class:`AuthTransientError` (a timeout says so:
``timed_out``, so the machine slows its polling down, RFC 8628 section 3.5);
``invalid_client`` and ``unauthorized_client`` are :class:`ClientRejected`, a
configuration error that throwing the grant away would not fix; on a refresh
only ``invalid_grant`` is :class:`RefreshRejected` (the grant is gone); on a
poll every answer but ``authorization_pending`` and ``slow_down`` ends the
flow.

Redirects are not followed: a redirect could carry the client secret or a
refresh token to another host, or downgrade https to http. TLS certificates are
verified (aiohttp's default, never turned off here).
"""

from __future__ import annotations

import asyncio
import logging
import platform
from collections.abc import Mapping
from typing import cast

import aiohttp
import attrs

from intercom_fsm._version import __version__
from intercom_fsm.adapters.auth_responses import (
    AuthResult,
    DeviceAuthorizationResult,
    HttpAnswer,
    PollResult,
    RefreshResult,
    endpoint_label,
    operation_label,
    parse_answer,
)
from intercom_fsm.events import (
    AccessDenied,
    AuthOperation,
    AuthTransientError,
    ClientRejected,
    DeviceFlowFailed,
    RefreshRejected,
)
from intercom_fsm.redact import one_line, redact
from intercom_fsm.transport_policy import insecure_transport_problem

logger = logging.getLogger(__name__)

DEVICE_AUTHORIZATION_PATH = "/oauth/device-authorization/"
TOKEN_PATH = "/oauth/token/"
DEVICE_CODE_GRANT_TYPE = "urn:ietf:params:oauth:grant-type:device_code"

MAX_BODY_BYTES = 64 * 1024
"""OAuth answers are a few hundred bytes; a larger body is refused unread so
a broken or hostile server cannot fill the device's memory."""

_USER_AGENT = f"intercom-fsm/{__version__}"


def default_device_os() -> str:
    """The platform string sent as ``device_os``, e.g. ``Linux-6.1.0-aarch64``."""
    parts = (platform.system(), platform.release(), platform.machine())
    return "-".join(part for part in parts if part) or "unknown"


def _without_trailing_slash(url: str) -> str:
    return url.rstrip("/")


def _positive(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be positive")


@attrs.frozen
class AuthSettings:
    """What the auth adapter needs from the configuration."""

    http_base_url: str = attrs.field(converter=_without_trailing_slash)
    client_id: str
    client_secret: str | None = attrs.field(default=None, repr=False)
    scope: str | None = None
    device_type: str = "camera"
    device_os: str = attrs.field(factory=default_device_os)
    timeout: float = attrs.field(default=10.0, validator=_positive)
    allow_insecure_transport: bool = False

    def __attrs_post_init__(self) -> None:
        # Defence in depth behind the config check: never send the client
        # secret or a refresh token in clear to a non-loopback host.
        problem = insecure_transport_problem(self.http_base_url, self.allow_insecure_transport)
        if problem:
            raise ValueError(f"http_base_url: {problem}")


class AuthClient:
    """Device authorization grant client (RFC 8628) on a shared aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, settings: AuthSettings) -> None:
        self._session = session
        self._settings = settings

    @property
    def settings(self) -> AuthSettings:
        return self._settings

    async def request_device_code(self) -> DeviceAuthorizationResult:
        """protocol.md 1.1: start a device flow."""
        form = self._client_form()
        if self._settings.scope:
            form["scope"] = self._settings.scope
        form["device_type"] = self._settings.device_type
        form["device_os"] = self._settings.device_os
        result = await self._post(
            AuthOperation.DEVICE_AUTHORIZATION, DEVICE_AUTHORIZATION_PATH, form
        )
        # parse_answer only returns the events of the operation it was given.
        return cast(DeviceAuthorizationResult, result)

    async def poll_token(self, device_code: str) -> PollResult:
        """protocol.md 1.2: ask once whether the person approved the device."""
        form = {"grant_type": DEVICE_CODE_GRANT_TYPE, "device_code": device_code}
        form.update(self._client_form())
        result = await self._post(AuthOperation.POLL, TOKEN_PATH, form, secrets=(device_code,))
        return cast(PollResult, result)

    async def refresh(self, refresh_token: str) -> RefreshResult:
        """protocol.md 1.3: trade the refresh token for new tokens."""
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        form.update(self._client_form())
        result = await self._post(
            AuthOperation.REFRESH,
            TOKEN_PATH,
            form,
            secrets=(refresh_token,),
            sent_refresh_token=refresh_token,
        )
        return cast(RefreshResult, result)

    def _client_form(self) -> dict[str, str]:
        form = {"client_id": self._settings.client_id}
        if self._settings.client_secret:
            form["client_secret"] = self._settings.client_secret
        return form

    async def _post(
        self,
        operation: AuthOperation,
        path: str,
        form: Mapping[str, str],
        *,
        secrets: tuple[str, ...] = (),
        sent_refresh_token: str | None = None,
    ) -> AuthResult:
        all_secrets = (*secrets, self._settings.client_secret)
        try:
            # aiohttp's total timeout plus our own: the second also bounds
            # the body read, whatever aiohttp version is installed.
            async with asyncio.timeout(self._settings.timeout):
                answer = await self._exchange(path, form)
        except _AnswerTooLarge:
            reason = f"{endpoint_label(operation)} sent a body larger than {MAX_BODY_BYTES} bytes"
            return self._transient(operation, reason, all_secrets)
        except TimeoutError:
            endpoint, limit = endpoint_label(operation), self._settings.timeout
            reason = f"no answer from the {endpoint} within {limit:g} s"
            return attrs.evolve(self._transient(operation, reason, all_secrets), timed_out=True)
        except aiohttp.ClientSSLError as error:
            described = one_line(error, all_secrets)
            reason = f"TLS failure talking to the {endpoint_label(operation)}: {described}"
            return self._transient(operation, reason, all_secrets)
        except (aiohttp.ClientError, OSError, ValueError) as error:
            described = one_line(error, all_secrets)
            reason = f"cannot reach the {endpoint_label(operation)}: {described}"
            return self._transient(operation, reason, all_secrets)
        except Exception as error:  # the adapter's promise: nothing escapes as an exception
            logger.exception("%s: unexpected error", operation_label(operation))
            reason = f"unexpected {type(error).__name__} talking to the {endpoint_label(operation)}"
            return self._transient(operation, reason, all_secrets)
        result = parse_answer(
            operation, answer, sent_refresh_token=sent_refresh_token, secrets=all_secrets
        )
        # Server text travels on in these events; a server that echoes the
        # request must not put a secret into the daemon's logs. parse_answer
        # replaced them before cutting the text; this is the net behind it.
        if isinstance(result, AuthTransientError):
            return attrs.evolve(result, reason=redact(result.reason, all_secrets))
        if (
            isinstance(result, AccessDenied | RefreshRejected | DeviceFlowFailed | ClientRejected)
            and result.description
        ):
            return attrs.evolve(result, description=redact(result.description, all_secrets))
        return result

    async def _exchange(self, path: str, form: Mapping[str, str]) -> HttpAnswer:
        url = self._settings.http_base_url + path
        timeout = aiohttp.ClientTimeout(total=self._settings.timeout)
        headers = {"Accept": "application/json", "User-Agent": _USER_AGENT}
        async with self._session.post(
            url, data=dict(form), headers=headers, timeout=timeout, allow_redirects=False
        ) as response:
            declared = response.content_length
            if declared is not None and declared > MAX_BODY_BYTES:
                raise _AnswerTooLarge
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(16 * 1024):
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise _AnswerTooLarge
                chunks.append(chunk)
            return HttpAnswer(
                status=response.status,
                content_type=response.headers.get("Content-Type"),
                body=b"".join(chunks),
                retry_after=response.headers.get("Retry-After"),
            )

    @staticmethod
    def _transient(
        operation: AuthOperation, reason: str, secrets: tuple[str | None, ...]
    ) -> AuthTransientError:
        text = f"{operation_label(operation)}: {reason}"
        return AuthTransientError(operation=operation, reason=redact(text, secrets))


class _AnswerTooLarge(Exception):
    pass
