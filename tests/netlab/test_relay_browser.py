"""A relay-only viewer: Debian's chromium with ``iceTransportPolicy: "relay"``
watches the daemon through coturn on loopback.

The daemon runs as a process with ``ICE_SERVERS`` naming the TURN server; the
sandbox's monitor page is used as it is, with its ``RTCPeerConnection``
given the TURN server and the relay-only policy by an init script (what a
viewer behind a strict network is configured to do). Chromium must pick a
pair whose own side is a relay candidate, and frames must play.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from intercom_fsm.sandbox.process import SandboxProcess
from tests.e2e.daemon_process import DaemonProcess, daemon_environment
from tests.netlab.conftest import lab_unavailable
from tests.netlab.scene import device_code
from tests.netlab.turn import TurnServer
from tests.sandbox.test_browser import WAIT_MS, browser, wait_for_frames

__all__ = ["browser"]
pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.asyncio, pytest.mark.timeout(120)]

FORCE_RELAY = """
(() => {
  const Native = window.RTCPeerConnection;
  const forced = %s;
  window.__peers = [];
  function Relayed(config) {
    const peer = new Native(Object.assign({}, config || {}, forced));
    window.__peers.push(peer);
    return peer;
  }
  Relayed.prototype = Native.prototype;
  Object.setPrototypeOf(Relayed, Native);
  window.RTCPeerConnection = Relayed;
})();
"""

SELECTED_PAIR = """
async () => {
  const peer = window.__peers[window.__peers.length - 1];
  const stats = await peer.getStats();
  let pairId = null;
  stats.forEach((report) => {
    if (report.type === "transport" && report.selectedCandidatePairId) {
      pairId = report.selectedCandidatePairId;
    }
  });
  if (!pairId) return null;
  const pair = stats.get(pairId);
  const local = stats.get(pair.localCandidateId);
  const remote = stats.get(pair.remoteCandidateId);
  return {
    local: local.candidateType,
    remote: remote.candidateType,
    relayProtocol: local.relayProtocol || null,
    policy: peer.getConfiguration().iceTransportPolicy,
  };
}
"""


@pytest.fixture
def turn(tmp_path: Path) -> Iterator[TurnServer]:
    try:
        with TurnServer("127.0.0.1", tmp_path / "turn") as server:
            yield server
    except FileNotFoundError as error:
        lab_unavailable(str(error))


@pytest.fixture
def relay_sandbox() -> Iterator[SandboxProcess]:
    with SandboxProcess(auto_approve=True, device_interval=1) as process:
        yield process


async def test_a_relay_only_chromium_viewer_watches_the_daemon(
    browser: Any, relay_sandbox: SandboxProcess, turn: TurnServer, tmp_path: Path
) -> None:
    info = relay_sandbox.info
    environ = daemon_environment(
        info, tmp_path / "config" / "tokens.json", ICE_SERVERS=turn.ice_servers("udp")
    )
    daemon = DaemonProcess(environ, tmp_path / "daemon.log").start()
    context = await browser.new_context()
    try:
        code = device_code(daemon)
        forced = {
            "iceServers": [
                {"urls": [turn.url("udp")], "username": turn.username, "credential": turn.password}
            ],
            "iceTransportPolicy": "relay",
        }
        await context.add_init_script(FORCE_RELAY % json.dumps(forced))
        page = await context.new_page()
        await page.goto(f"{info.http_base_url}/accounts/login/")
        await page.fill("#id_username", info.username)
        await page.fill("#id_password", info.password)
        await page.click("#sign-in")
        await page.wait_for_url(f"{info.viewer_url}**", timeout=WAIT_MS)
        await page.goto(f"{info.viewer_url}?watch={code}")
        await wait_for_frames(page, 15)
        pair = await page.evaluate(SELECTED_PAIR)
        assert pair is not None, "chromium has no selected candidate pair"
        assert pair["policy"] == "relay"
        assert pair["local"] == "relay" and pair["relayProtocol"] == "udp", pair
        daemon.wait_for_state("Streaming")
    finally:
        await context.close()
        daemon.stop()
    text = daemon.text()
    assert len(text) > 1000
    assert all(secret not in text for secret in turn.secrets)
