// The monitor page's audio: the door's sound, a talk button, a level meter each way.
//
// Each offer gets one audio section (protocol.md 3.2): `sendrecv` when the
// browser lets the page use a microphone, `recvonly` otherwise. The
// microphone is only sent while the talk button is held, or toggled on; the
// rest of the time the sender has no track and nothing goes out. Levels are
// read from AnalyserNodes and shown in dBFS; `window.intercomAudio.levels()`
// returns them and the incoming sound's strongest frequency (the browser
// test reads it).
"use strict";

window.intercomAudio = (() => {
  const FLOOR_DB = -90;
  const byId = (id) => document.getElementById(id);
  const state = {
    context: null,
    microphone: null, // Promise of a MediaStreamTrack or null
    sender: null,
    incoming: null, // AnalyserNode
    outgoing: null,
    held: false,
    toggled: false,
  };

  function context() {
    if (!state.context) state.context = new AudioContext();
    if (state.context.state === "suspended") state.context.resume();
    return state.context;
  }

  function microphone() {
    if (!state.microphone) {
      state.microphone = navigator.mediaDevices && navigator.mediaDevices.getUserMedia
        ? navigator.mediaDevices
            .getUserMedia({ audio: { echoCancellation: true } })
            .then((stream) => {
              const track = stream.getAudioTracks()[0] || null;
              if (track) state.outgoing = analyser(new MediaStream([track]));
              return track;
            })
            .catch((error) => {
              console.info("no microphone: listening only", error.name);
              return null;
            })
        : Promise.resolve(null);
    }
    return state.microphone;
  }

  function analyser(stream) {
    const node = context().createAnalyser();
    node.fftSize = 2048;
    context().createMediaStreamSource(stream).connect(node);
    return node;
  }

  function level(node) {
    if (!node) return FLOOR_DB;
    const samples = new Float32Array(node.fftSize);
    node.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const value of samples) sum += value * value;
    const power = sum / samples.length;
    return power > 1e-9 ? Math.max(FLOOR_DB, 10 * Math.log10(power)) : FLOOR_DB;
  }

  function peakHz(node) {
    if (!node) return 0;
    const bins = new Float32Array(node.frequencyBinCount);
    node.getFloatFrequencyData(bins);
    let best = 1;
    for (let i = 1; i < bins.length; i += 1) if (bins[i] > bins[best]) best = i;
    return (best * node.context.sampleRate) / node.fftSize;
  }

  function talking() {
    return state.held || state.toggled;
  }

  async function updateTalk() {
    const button = byId("talk");
    const toggle = byId("talk-toggle");
    button.setAttribute("aria-pressed", String(talking()));
    toggle.setAttribute("aria-pressed", String(state.toggled));
    toggle.textContent = state.toggled ? "Stop talking" : "Keep talking";
    byId("talk-state").textContent = talking() ? "Talking to the door" : "";
    if (!state.sender) return;
    const track = talking() ? await microphone() : null;
    await state.sender.replaceTrack(track);
  }

  // Called by monitor.js before each offer.
  async function addTo(peer) {
    const track = await microphone();
    byId("talk").disabled = !track;
    byId("talk-toggle").disabled = !track;
    byId("mic-note").textContent = track ? "" : "No microphone: listening only.";
    const transceiver = peer.addTransceiver("audio", { direction: track ? "sendrecv" : "recvonly" });
    state.sender = track ? transceiver.sender : null;
    if (track) await updateTalk();
  }

  function play(event) {
    const stream = new MediaStream([event.track]);
    const element = byId("door-audio");
    element.srcObject = stream;
    element.play().catch((error) => console.info("sound waits for a click", error.name));
    state.incoming = analyser(stream);
  }

  function stop() {
    state.sender = null;
    state.incoming = null;
    byId("door-audio").srcObject = null;
  }

  function levels() {
    return {
      incoming: level(state.incoming),
      incomingHz: peakHz(state.incoming),
      outgoing: talking() ? level(state.outgoing) : FLOOR_DB,
      talking: talking(),
    };
  }

  function show() {
    const { incoming, outgoing } = levels();
    for (const [id, value] of [["level-in", incoming], ["level-out", outgoing]]) {
      const meter = byId(id);
      meter.value = value;
      meter.dataset.db = value.toFixed(1);
      byId(`${id}-text`).textContent = value > FLOOR_DB ? `${value.toFixed(0)} dB` : "–";
    }
    requestAnimationFrame(show);
  }

  function hold(down) {
    state.held = down;
    updateTalk();
  }

  const talk = byId("talk");
  talk.addEventListener("pointerdown", () => hold(true));
  for (const name of ["pointerup", "pointerleave", "pointercancel"]) {
    talk.addEventListener(name, () => state.held && hold(false));
  }
  talk.addEventListener("keydown", (event) => {
    if ((event.key === " " || event.key === "Enter") && !event.repeat) hold(true);
  });
  talk.addEventListener("keyup", (event) => {
    if (event.key === " " || event.key === "Enter") hold(false);
  });
  byId("talk-toggle").addEventListener("click", () => {
    state.toggled = !state.toggled;
    updateTalk();
  });
  requestAnimationFrame(show);

  return { addTo, play, stop, levels, unlock: context };
})();
