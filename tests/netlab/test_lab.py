"""The lab itself: rate, loss and outages really happen, measured with real
TCP and UDP flows between two namespaces, and nothing is left behind."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
import time

import pytest

from tests.netlab.flows import Flow, flow_argv
from tests.netlab.lab import LAB_NETWORK, NetLab, run

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

PORT = 40_000


def test_addresses_come_from_the_benchmarking_range_and_links_work(netlab: NetLab) -> None:
    a, b = netlab.namespace("a"), netlab.namespace("b")
    link = netlab.link(a, b)
    up = netlab.uplink(a)
    for address in (link.a_address, link.b_address, up.a_address, up.b_address):
        assert ipaddress.IPv4Address(address) in LAB_NETWORK
    sink = Flow(b.command(flow_argv("udp-sink", PORT, 0.5))).wait_ready()
    Flow(a.command(flow_argv("udp-send", link.b_address, PORT, 100, 200))).result()
    assert sink.result()["received"] == 100


def test_the_rate_limit_holds_a_tcp_flow_to_it(netlab: NetLab) -> None:
    a, b = netlab.namespace("a"), netlab.namespace("b")
    link = netlab.link(a, b)
    link.shape(1000, towards=b, queue_ms=100)
    sink = Flow(b.command(flow_argv("tcp-sink", PORT))).wait_ready()
    Flow(a.command(flow_argv("tcp-send", link.b_address, PORT, 3))).result()
    got = sink.result()
    kbit_per_second = got["bytes"] * 8 / 1000 / got["seconds"]
    # Goodput: the payload, under the link's rate once headers are counted.
    assert 800 <= kbit_per_second <= 1030, got
    # The other way is not shaped.
    back = Flow(a.command(flow_argv("tcp-sink", PORT))).wait_ready()
    Flow(b.command(flow_argv("tcp-send", link.a_address, PORT, 1))).result()
    reverse = back.result()
    assert reverse["bytes"] * 8 / 1000 / reverse["seconds"] > 20_000, reverse


def test_random_loss_drops_that_share_of_a_udp_flow(netlab: NetLab) -> None:
    a, b = netlab.namespace("a"), netlab.namespace("b")
    link = netlab.link(a, b)
    link.set_loss(10.0, towards=b)
    sink = Flow(b.command(flow_argv("udp-sink", PORT, 2.5))).wait_ready()
    Flow(a.command(flow_argv("udp-send", link.b_address, PORT, 2000, 1000))).result()
    received = sink.result()["received"]
    # 2000 datagrams, each lost with p = 0.1: 200 ± 13 lost; six sigmas either side.
    assert 1720 <= received <= 1880, received
    link.set_loss(0.0, towards=b)
    sink = Flow(b.command(flow_argv("udp-sink", PORT, 1.5))).wait_ready()
    Flow(a.command(flow_argv("udp-send", link.b_address, PORT, 1000, 1000))).result()
    assert sink.result()["received"] == 1000


def test_an_outage_silences_the_link_for_its_length(netlab: NetLab) -> None:
    a, b = netlab.namespace("a"), netlab.namespace("b")
    link = netlab.link(a, b)
    sink = Flow(b.command(flow_argv("udp-sink", PORT, 2.8))).wait_ready()
    sender = Flow(a.command(flow_argv("udp-send", link.b_address, PORT, 600, 200)))
    time.sleep(0.8)  # the flow runs, then the link is cut for a second
    with link.outage():
        time.sleep(1.0)
    sender.result()
    got = sink.result()
    assert 0.95 <= got["longest_gap"] <= 1.5, got
    assert 300 <= got["received"] <= 420, got


def test_everything_is_removed_also_when_the_test_fails() -> None:
    names: list[str] = []
    lab = NetLab()

    def failing_test() -> None:
        with lab:
            a = lab.namespace("a")
            lab.link(a, None).cut()
            lab.link(a, lab.namespace("b")).shape(500, towards=a)
            subprocess.Popen(a.command(["sleep", "30"]))
            names.extend(ns.name for ns in lab.namespaces)
            raise RuntimeError("the test failed")

    with pytest.raises(RuntimeError, match="the test failed"):
        failing_test()
    assert len(names) == 2 and lab.leftovers() == []
    assert lab.root_table not in run(["nft", "list", "tables"])
    listed = run(["ip", "netns", "list"])
    assert not any(name in listed for name in names)


def test_a_dead_runs_leftovers_are_swept_at_start() -> None:
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    dead = int(finished.stdout)
    stale = f"il{dead}-old"
    run(["ip", "netns", "add", stale])
    try:
        with NetLab() as lab:
            assert stale not in run(["ip", "netns", "list"])
            assert lab.namespaces == []
    finally:
        run(["ip", "netns", "delete", stale], check=False)
