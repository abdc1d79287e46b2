"""A synthetic H.264 IP camera: GStreamer's RTSP server on loopback.

It re-encodes the time-stamped pictures of the MJPEG bench camera
(``bench/mjpeg_source.py``) to H.264 the way an IP camera encodes: High
profile, no B-frames, an IDR every ``--gop`` seconds, and by default the
parameter sets (SPS/PPS) only in the SDP's ``sprop-parameter-sets``, never in
band, as many cameras do. ``--inband`` repeats them before every IDR instead.

All clients share one pipeline (one encoder), as they share a real camera;
the pipeline starts with the first client and stops after the last.

Runs with the system's Python and its GStreamer bindings (Debian
``python3-gi``, ``gir1.2-gst-rtsp-server-1.0``, ``gstreamer1.0-plugins-good``
/ ``-bad`` / ``-ugly``), never inside the project's virtualenv::

    /usr/bin/python3 bench/rtsp_server.py --mjpeg http://127.0.0.1:PORT/stream.mjpg

It prints ``READY rtsp://127.0.0.1:<port>/stamp`` once it listens, then one
``SETUP <Transport header>`` line for every stream a client sets up, and
serves until SIGTERM or SIGINT. Standard library and GStreamer only: it cannot
import the project.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

MOUNT = "/stamp"


def pipeline(
    mjpeg_url: str,
    fps: float,
    gop_seconds: float,
    kbps: int,
    inband: bool,
    bframes: int = 0,
    codec: str = "h264",
) -> str:
    source = (
        f"souphttpsrc location={mjpeg_url} is-live=true do-timestamp=true"
        " ! multipartdemux ! image/jpeg"
    )
    if codec == "mjpeg":  # the camera's JPEGs as they are, over RTP (RFC 2435)
        return f"( {source} ! jpegparse ! rtpjpegpay name=pay0 pt=26 )"
    key_interval = max(1, round(fps * gop_seconds))
    # ultrafast alone would fall back to Baseline; the 8x8 transform is the
    # High-profile tool, and cameras use it. zerolatency turns B-frames off:
    # a camera that sends them is encoded without it.
    tune = "tune=zerolatency " if bframes == 0 else "b-adapt=false rc-lookahead=0 "
    return (
        f"( {source} ! jpegdec ! videoconvert ! video/x-raw,format=I420"
        f" ! x264enc {tune}speed-preset=ultrafast bitrate={kbps}"
        f" key-int-max={key_interval} bframes={bframes} threads=1"
        " option-string=8x8dct=1:repeat-headers=0"
        " ! video/x-h264,profile=high,stream-format=avc"
        f" ! rtph264pay name=pay0 pt=96 config-interval={-1 if inband else 0} )"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A synthetic H.264 RTSP camera.")
    parser.add_argument("--mjpeg", required=True, help="the MJPEG bench camera's stream URL")
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--gop", type=float, default=2.0, help="seconds between IDR pictures")
    parser.add_argument("--kbps", type=int, default=1000)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--inband", action="store_true", help="SPS/PPS before every IDR")
    parser.add_argument("--bframes", type=int, default=0, help="B-frames between references")
    parser.add_argument("--codec", choices=("h264", "mjpeg"), default="h264")
    parser.add_argument("--user", help="clients must sign in as this user")
    parser.add_argument("--password", default="")
    parser.add_argument("--auth", choices=("basic", "digest"), default="digest")
    args = parser.parse_args(argv)

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        pipeline(args.mjpeg, args.fps, args.gop, args.kbps, args.inband, args.bframes, args.codec)
    )
    factory.set_shared(True)
    if args.user is not None:
        _require_sign_in(server, factory, args.user, args.password, args.auth)
    server.get_mount_points().add_factory(MOUNT, factory)
    server.connect("client-connected", _on_client)
    if server.attach(None) == 0:
        print("rtsp_server: cannot listen", file=sys.stderr)
        return 1

    loop = GLib.MainLoop()
    for number in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, number, _quit, loop)
    print(f"READY rtsp://127.0.0.1:{server.get_bound_port()}{MOUNT}", flush=True)
    loop.run()
    return 0


def _require_sign_in(
    server: GstRtspServer.RTSPServer,
    factory: GstRtspServer.RTSPMediaFactory,
    user: str,
    password: str,
    method: str,
) -> None:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", user)
    if method == "basic":
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.BASIC)
    else:
        auth.add_digest(user, password, token)
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    server.set_auth(auth)
    permissions = GstRtspServer.RTSPPermissions()
    permissions.add_permission_for_role(user, "media.factory.access", True)
    permissions.add_permission_for_role(user, "media.factory.construct", True)
    factory.set_permissions(permissions)


def _on_client(_server: GstRtspServer.RTSPServer, client: GstRtspServer.RTSPClient) -> None:
    client.connect("setup-request", _on_setup)


def _on_setup(_client: GstRtspServer.RTSPClient, context: GstRtspServer.RTSPContext) -> None:
    result, transport = context.request.get_header(GstRtsp.RTSPHeaderField.TRANSPORT, 0)
    if result == GstRtsp.RTSPResult.OK:
        print(f"SETUP {transport}", flush=True)


def _quit(loop: GLib.MainLoop) -> bool:
    loop.quit()
    return bool(GLib.SOURCE_REMOVE)  # GLib has no type stubs here: the constant is untyped


if __name__ == "__main__":
    sys.exit(main())
