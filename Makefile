# Two commands do all the set-up on a fresh machine:
#   make demo   the sandbox backend + the daemon streaming a test pattern
#   make test   ruff, mypy --strict and the whole pytest suite (what CI runs)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench bench-network bench-audio diagram clean browser netlab

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,sandbox]'
	touch $(STAMP)

# Debian packages the tests use: chromium for the browser tests (playwright's own
# download does not work here), systemd for systemd-analyze, graphviz for SVG diagrams,
# GStreamer's RTSP server (run by the system python3) as the H.264 camera of the media tests,
# a sound server in user space for the audio tests (PulseAudio, reached through ALSA), and a C
# compiler with linux/videodev2.h for the V4L2 camera the tests emulate (tests/v4l2/).
GST_CHECK := import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); \
  from gi.repository import Gst, GstRtspServer; Gst.init(None); \
  assert all(Gst.ElementFactory.find(e) for e in ('x264enc', 'rtph264pay', 'souphttpsrc', 'multipartdemux', 'jpegdec', 'videoconvert'))
GST_PACKAGES := python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-tools gstreamer1.0-plugins-base \
  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
browser:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v systemd-analyze >/dev/null 2>&1 || missing="$$missing systemd"; \
	command -v dot >/dev/null 2>&1 || missing="$$missing graphviz"; \
	/usr/bin/python3 -c "$(GST_CHECK)" >/dev/null 2>&1 || missing="$$missing $(GST_PACKAGES)"; \
	command -v pulseaudio >/dev/null 2>&1 || missing="$$missing pulseaudio"; \
	command -v pacat >/dev/null 2>&1 || missing="$$missing pulseaudio-utils"; \
	ls /usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so >/dev/null 2>&1 || missing="$$missing libasound2-plugins"; \
	command -v cc >/dev/null 2>&1 || missing="$$missing gcc libc6-dev"; \
	test -f /usr/include/linux/videodev2.h || missing="$$missing linux-libc-dev"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing Debian packages for the tests:$$missing" >&2; \
	  fi; \
	fi

# Debian packages of the network tests (tests/netlab/): iproute2 for namespaces,
# veth and tc, nftables for loss, outages and blocked ports, coturn for TURN.
netlab:
	@missing=""; \
	command -v ip >/dev/null 2>&1 || missing="$$missing iproute2"; \
	command -v nft >/dev/null 2>&1 || missing="$$missing nftables"; \
	command -v turnserver >/dev/null 2>&1 || missing="$$missing coturn"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "missing Debian packages for the network tests:$$missing" >&2; \
	  fi; \
	fi

# The sandbox backend and the daemon streaming a test pattern; open the printed
# viewer page, sign in, approve the code. ARGS="--auto-approve --duration 60" for scripts.
demo: $(STAMP)
	$(BIN)/intercom-fsm demo $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check intercom_fsm tests bench examples
	$(BIN)/ruff format --check intercom_fsm tests bench examples

typecheck: $(STAMP)
	$(BIN)/mypy --strict intercom_fsm tests bench examples

pytest: $(STAMP) browser netlab
	$(BIN)/pytest -q

test: lint typecheck pytest

# The benchmarks: the machine's dispatch rate, then the whole pipeline against
# the naive client (about 20 minutes; writes bench/results/). ARGS=--quick: 2 minutes.
bench: $(STAMP)
	$(BIN)/python bench/fsm.py
	$(BIN)/python bench/pipeline.py $(ARGS)

# Slow, lossy and broken links against the naive client (as root: network
# namespaces; about 15 minutes, writes bench/results/network.md). ARGS=--quick: 6.
bench-network: $(STAMP) netlab
	$(BIN)/python bench/network.py $(ARGS)

# Two-way audio on a sound server in user space, beside MediaPlayer/MediaRecorder.
bench-audio: $(STAMP) browser
	$(BIN)/python bench/audio.py $(ARGS)

diagram: $(STAMP)
	$(BIN)/intercom-fsm diagram

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
