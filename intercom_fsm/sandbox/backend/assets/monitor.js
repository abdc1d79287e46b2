// The sandbox's monitor page: approve devices, list them, watch one.
//
// The page is the WebRTC offerer: it offers to receive one video track, sends
// its ICE candidates one by one through the viewer WebSocket (then
// `candidate: null`), and applies the device's answer and candidates. When the
// device goes offline or the stream drops it says so, and offers again as soon
// as the device is back. Every tab is its own viewer.
"use strict";

(() => {
  const REFRESH_DEVICES_MS = 2000;
  const REOFFER_DELAY_MS = 2000;
  const RECONNECT_DELAY_MS = 2000;

  const byId = (id) => document.getElementById(id);
  const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  const video = byId("video");

  const watch = {
    deviceCode: null,
    socket: null,
    session: null,
    online: false,
    peer: null,
    reofferTimer: null,
  };

  function setStatus(text, kind) {
    const status = byId("status");
    status.textContent = text;
    status.className = "message" + (kind ? " " + kind : "");
    status.dataset.state = kind || "info";
  }

  // ---- Devices ------------------------------------------------------------

  const STATUS_LABELS = {
    connected: "online",
    approved: "approved",
    pending: "waiting for approval",
    denied: "denied",
    expired: "expired",
  };

  function renderDevices(devices) {
    const list = byId("devices");
    list.replaceChildren();
    byId("devices-empty").hidden = devices.length > 0;
    for (const device of devices) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "device";
      button.dataset.deviceCode = device.device_code;
      button.dataset.status = device.status;
      button.disabled = !["connected", "approved"].includes(device.status);
      button.setAttribute("aria-pressed", String(device.device_code === watch.deviceCode));
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = `${device.device_type || "device"} · ${device.user_code}`;
      const detail = document.createElement("span");
      detail.className = "detail";
      detail.textContent = device.device_os;
      const badge = document.createElement("span");
      badge.className = `badge ${device.status}`;
      badge.textContent = STATUS_LABELS[device.status] || device.status;
      if (device.viewers > 0) badge.textContent += ` · ${device.viewers} watching`;
      if (device.device_code === watch.deviceCode) {
        byId("stream-device").textContent = `· ${device.user_code}`;
      }
      button.append(name, detail, badge);
      button.addEventListener("click", () => startWatching(device.device_code, device.user_code));
      item.append(button);
      list.append(item);
    }
  }

  async function refreshDevices() {
    try {
      const response = await fetch("/api/devices/", { credentials: "same-origin" });
      if (response.status === 401) {
        window.location.assign("/accounts/login/?next=" + encodeURIComponent(location.pathname));
        return;
      }
      if (response.ok) renderDevices((await response.json()).devices);
    } catch (error) {
      console.warn("device list unavailable", error);
    }
  }

  async function decide(decision) {
    const input = byId("user-code");
    const result = byId("approve-result");
    const userCode = input.value.trim();
    if (!userCode) {
      result.textContent = "Type the code the device shows.";
      result.className = "message error";
      return;
    }
    const response = await fetch("/api/devices/decide/", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken },
      body: JSON.stringify({ user_code: userCode, decision }),
    });
    const body = await response.json().catch(() => ({}));
    if (response.ok) {
      result.textContent = `Device ${body.user_code} ${body.status}.`;
      result.className = "message ok";
      input.value = "";
    } else {
      result.textContent = body.error || `The sandbox answered ${response.status}.`;
      result.className = "message error";
    }
    refreshDevices();
  }

  byId("approve-form").addEventListener("submit", (event) => {
    event.preventDefault();
    decide("approve");
  });
  byId("deny").addEventListener("click", () => decide("deny"));

  // ---- Watching -------------------------------------------------------------

  function send(message) {
    if (watch.socket && watch.socket.readyState === WebSocket.OPEN) {
      watch.socket.send(JSON.stringify(message));
    }
  }

  function closePeer() {
    clearTimeout(watch.reofferTimer);
    watch.reofferTimer = null;
    if (watch.peer) {
      watch.peer.close();
      watch.peer = null;
    }
    video.srcObject = null;
  }

  function scheduleReoffer() {
    clearTimeout(watch.reofferTimer);
    watch.reofferTimer = setTimeout(() => {
      if (watch.online) offer();
    }, REOFFER_DELAY_MS);
  }

  async function offer() {
    closePeer();
    const peer = new RTCPeerConnection({ iceServers: [] });
    watch.peer = peer;
    peer.addTransceiver("video", { direction: "recvonly" });
    let offerSent = false;
    const earlyCandidates = [];
    peer.onicecandidate = (event) => {
      const candidate = event.candidate
        ? {
            candidate: event.candidate.candidate,
            sdpMid: event.candidate.sdpMid,
            sdpMLineIndex: event.candidate.sdpMLineIndex,
          }
        : null;
      if (offerSent) send({ type: "ice", candidate });
      else earlyCandidates.push(candidate);
    };
    peer.ontrack = (event) => {
      video.srcObject = event.streams[0] || new MediaStream([event.track]);
    };
    peer.onconnectionstatechange = () => {
      if (peer !== watch.peer) return;
      const state = peer.connectionState;
      if (state === "connected") {
        setStatus("Streaming.", "ok");
      } else if (state === "failed" || state === "disconnected" || state === "closed") {
        if (watch.online) {
          setStatus("The stream dropped. Trying again…", "error");
          scheduleReoffer();
        } else {
          // The call was kept through the device's reconnect, and now ended.
          closePeer();
          setStatus("The device is offline. Waiting for it to come back…", "error");
        }
      }
    };
    setStatus("Connecting to the device…", "busy");
    await peer.setLocalDescription(await peer.createOffer());
    if (peer !== watch.peer) return;
    send({ type: "offer", sdp: peer.localDescription.sdp });
    offerSent = true;
    for (const candidate of earlyCandidates) send({ type: "ice", candidate });
  }

  async function onSignal(message) {
    const peer = watch.peer;
    switch (message.type) {
      case "welcome":
        watch.session = message.session;
        watch.online = message.online;
        if (message.online) await offer();
        else setStatus("The device is offline. Waiting for it to come back…", "error");
        break;
      case "presence": {
        watch.online = message.online;
        // A call outlives the device's signaling socket (protocol.md 3.3):
        // a connected peer is kept while the device reconnects.
        const live = peer && peer.connectionState === "connected";
        if (message.online) {
          if (live) setStatus("Streaming.", "ok");
          else await offer();
        } else if (live) {
          setStatus("Streaming; the device's signaling is reconnecting.", "ok");
        } else {
          closePeer();
          setStatus("The device is offline. Waiting for it to come back…", "error");
        }
        break;
      }
      case "answer":
        if (peer && peer.signalingState === "have-local-offer" && typeof message.sdp === "string") {
          await peer.setRemoteDescription({ type: "answer", sdp: message.sdp });
        }
        break;
      case "ice":
        if (peer && peer.remoteDescription) {
          const candidate = message.candidate;
          await peer.addIceCandidate(candidate && candidate.candidate ? candidate : undefined);
        }
        break;
      case "error":
        console.warn("sandbox:", message.error);
        break;
      default:
        break;
    }
  }

  let signaling = Promise.resolve();

  function connectViewerSocket(deviceCode) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/ws/view/${deviceCode}/`);
    watch.socket = socket;
    socket.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        console.warn("not JSON from the sandbox", error);
        return;
      }
      // One message at a time: a candidate must wait until the answer is applied.
      signaling = signaling
        .then(() => onSignal(message))
        .catch((error) => {
          console.warn("signaling failed", error);
          setStatus("The stream could not be set up. Trying again…", "error");
          scheduleReoffer();
        });
    };
    socket.onclose = () => {
      if (watch.socket !== socket) return;
      closePeer();
      watch.online = false;
      setStatus("Lost the connection to the sandbox. Reconnecting…", "error");
      setTimeout(() => {
        if (watch.socket === socket) connectViewerSocket(deviceCode);
      }, RECONNECT_DELAY_MS);
    };
  }

  function startWatching(deviceCode, label) {
    if (watch.socket) {
      const old = watch.socket;
      watch.socket = null;
      old.close();
    }
    closePeer();
    watch.deviceCode = deviceCode;
    byId("stream-device").textContent = label ? `· ${label}` : "";
    setStatus("Connecting…", "busy");
    connectViewerSocket(deviceCode);
    refreshDevices();
  }

  // ---- Frame statistics (decoded frames, from requestVideoFrameCallback) -----

  const STALL_MS = 2000;
  let frames = 0;
  let windowStart = 0;
  let windowFrames = 0;
  let lastFrameAt = 0;

  function onFrame(now, metadata) {
    frames += 1;
    // After a pause the rate is measured afresh, not averaged over the gap.
    if (now - lastFrameAt > STALL_MS) {
      windowStart = now;
      windowFrames = 0;
    }
    lastFrameAt = now;
    windowFrames += 1;
    byId("frames").textContent = String(frames);
    byId("resolution").textContent = `${metadata.width}×${metadata.height}`;
    if (now - windowStart >= 1000) {
      const fps = ((windowFrames - 1) * 1000) / (now - windowStart);
      byId("fps").textContent = `${fps.toFixed(1)} fps`;
      windowStart = now;
      windowFrames = 1;
    }
    video.requestVideoFrameCallback(onFrame);
  }

  setInterval(() => {
    if (lastFrameAt && performance.now() - lastFrameAt > STALL_MS) {
      byId("fps").textContent = "0 fps (no frames)";
    }
  }, 1000);

  if ("requestVideoFrameCallback" in HTMLVideoElement.prototype) {
    video.requestVideoFrameCallback(onFrame);
  } else {
    byId("fps").textContent = "not measurable in this browser";
  }
  video.addEventListener("emptied", () => {
    byId("fps").textContent = "–";
    byId("resolution").textContent = "–";
  });

  refreshDevices();
  setInterval(refreshDevices, REFRESH_DEVICES_MS);
  const requested = new URLSearchParams(location.search).get("watch");
  if (requested) startWatching(requested, "");
})();
