"""An RTSP camera's H.264, read on the event loop.

Why not FFmpeg: FFmpeg reads RTSP in a blocking call, so its packets come out
on the capture thread and every access unit then wakes the event loop to
reach the viewers. Passing a camera's H.264 through costs nothing else, so
that hand-over is a third of what the daemon spends on such a camera (640x480
at 15 fps, one viewer: about 16 ms of CPU a second with FFmpeg, about 11 read
here). This package reads the camera where the viewers are sent from, on the
event loop, and hands the capture thread only what it must decode.

Theory of operation, in the style of h11: the protocol is sans-I/O, the I/O
is one small asyncio class.

* :mod:`.url` takes an ``rtsp://`` URL apart (credentials kept out of
  requests and logs);
* :mod:`.messages` frames what the camera's connection carries: RTSP
  requests out, responses and interleaved RTP/RTCP in (RFC 2326 section 10.12);
* :mod:`.auth` answers a ``401`` (Basic or Digest, RFC 2617/7616);
* :mod:`.describe` reads the ``DESCRIBE`` answer (SDP) for the H.264 video:
  its control URL, payload type, parameter sets;
* :mod:`.depacketize` turns RTP packets into Annex-B access units (RFC 6184:
  single NAL units, STAP-A, FU-A);
* :mod:`.session` runs one RTSP session on the loop (OPTIONS, DESCRIBE,
  SETUP over TCP or UDP, PLAY, keep-alive, TEARDOWN) and gives each access
  unit to a callback;
* :mod:`.reader` is the capture thread's side: it opens a session, hands each
  access unit to the passthrough viewers right on the loop, keeps the units a
  decoder would need, and decodes on the capture thread only while some
  viewer needs pictures.

What it does not read (another codec, ``rtsps://``, interleaved packetization
mode 2) is read by FFmpeg, as every other network stream
(:mod:`intercom_fsm.adapters.camera.av_reader`); so is every RTSP camera with
``VIDEO_RTSP_READER=ffmpeg``.
"""
