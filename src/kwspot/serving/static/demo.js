// kwspot browser demo: microphone -> AudioWorklet (resample to the model's rate, 16-bit PCM)
// -> WebSocket /v1/stream -> live detections and a scrolling plot of the smoothed scores.
"use strict";

const params = new URLSearchParams(location.search);
const token = params.get("access_token");
const PLOT_SECONDS = 10;
const COLORS = ["#2463eb", "#e8590c", "#2f9e44", "#c2255c", "#7048e8", "#0c8599",
                "#e67700", "#5c940d", "#a61e4d", "#364fc7", "#868e96", "#d9480f"];

const state = { ws: null, ctx: null, stream: null, keywords: [], thresholds: {},
                track: [], events: [], now: 0 };
const $ = (id) => document.getElementById(id);

function withToken(url) {
  return token ? url + (url.includes("?") ? "&" : "?") + "access_token=" + encodeURIComponent(token) : url;
}

async function loadModel() {
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const res = await fetch("/healthz", { headers });
  const info = await res.json();
  state.rate = info.sample_rate;
  $("model").textContent = `${info.model} · ${info.sample_rate} Hz · ${info.labels.length} labels`;
  $("start").disabled = false;  // the stream needs the model's rate first
}

function setStatus(text) { $("status").textContent = text; }

async function start() {
  $("start").disabled = true;
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  } catch (err) {
    setStatus("microphone refused: " + err.message);
    $("start").disabled = false;
    return;
  }
  state.ctx = new AudioContext();
  await state.ctx.audioWorklet.addModule("/static/capture-worklet.js");
  const source = state.ctx.createMediaStreamSource(state.stream);
  const node = new AudioWorkletNode(state.ctx, "kwspot-capture", {
    processorOptions: { targetRate: state.rate, chunkMs: 40 } });
  const mute = state.ctx.createGain();
  mute.gain.value = 0;
  source.connect(node).connect(mute).connect(state.ctx.destination);

  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const url = withToken(`${proto}//${location.host}/v1/stream?sample_rate=${state.rate}` +
                        "&format=int16&scores=1");
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  state.track = [];
  state.events = [];
  $("detections").replaceChildren();
  node.port.onmessage = (e) => { if (ws.readyState === WebSocket.OPEN) ws.send(e.data); };
  ws.onopen = () => setStatus(`listening: ${state.ctx.sampleRate} Hz microphone → ${state.rate} Hz`);
  ws.onmessage = (e) => handle(JSON.parse(e.data));
  ws.onclose = (e) => { setStatus(`stopped (${e.code}${e.reason ? ": " + e.reason : ""})`); teardown(); };
  ws.onerror = () => setStatus("connection error");
  $("stop").disabled = false;
}

function handle(msg) {
  if (msg.type === "ready") {
    state.keywords = msg.keywords;
    state.thresholds = msg.thresholds;
    const legend = $("legend");
    legend.replaceChildren();
    msg.keywords.forEach((k, i) => {
      const span = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = COLORS[i % COLORS.length];
      span.append(swatch, document.createTextNode(k));
      legend.append(span);
    });
  } else if (msg.type === "scores") {
    msg.end_s.forEach((t, i) => state.track.push([t, msg.scores[i]]));
    state.now = msg.end_s[msg.end_s.length - 1];
    while (state.track.length && state.track[0][0] < state.now - PLOT_SECONDS - 1) state.track.shift();
    draw();
  } else if (msg.type === "detection") {
    state.events.push(msg);
    const row = document.createElement("tr");
    row.className = "detection";
    row.dataset.keyword = msg.keyword;
    row.dataset.time = msg.time_s;
    for (const [text, cls] of [[msg.time_s.toFixed(2), "num"], [msg.keyword, ""],
                               [msg.score.toFixed(3), "num"]]) {
      const td = document.createElement("td");
      td.textContent = text;
      if (cls) td.className = cls;
      row.append(td);
    }
    $("detections").prepend(row);
    const last = $("last");
    last.textContent = msg.keyword;
    last.style.opacity = 1;
    clearTimeout(state.fade);
    state.fade = setTimeout(() => { last.style.opacity = 0.25; }, 1500);
  }
}

function draw() {
  const canvas = $("plot"), g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 24;
  g.clearRect(0, 0, w, h);
  const x = (t) => pad + (t - (state.now - PLOT_SECONDS)) / PLOT_SECONDS * (w - 2 * pad);
  const y = (s) => h - pad - s * (h - 2 * pad);
  g.strokeStyle = "#eee";
  g.fillStyle = "#999";
  g.font = "11px system-ui";
  for (const s of [0, 0.5, 1]) {
    g.beginPath(); g.moveTo(pad, y(s)); g.lineTo(w - pad, y(s)); g.stroke();
    g.fillText(s.toFixed(1), 2, y(s) + 4);
  }
  state.keywords.forEach((k, i) => {
    g.strokeStyle = COLORS[i % COLORS.length];
    g.lineWidth = 1.5;
    g.beginPath();
    state.track.forEach(([t, scores], j) => {
      if (j === 0) g.moveTo(x(t), y(scores[i])); else g.lineTo(x(t), y(scores[i]));
    });
    g.stroke();
  });
  g.fillStyle = "#1d232b";
  g.font = "bold 13px system-ui";
  for (const e of state.events) {
    if (e.end_s < state.now - PLOT_SECONDS) continue;
    g.strokeStyle = "#1d232b";
    g.setLineDash([4, 3]);
    g.beginPath(); g.moveTo(x(e.end_s), pad); g.lineTo(x(e.end_s), h - pad); g.stroke();
    g.setLineDash([]);
    g.fillText(e.keyword, x(e.end_s) + 3, pad + 10);
  }
}

function stop() {
  $("stop").disabled = true;
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(new ArrayBuffer(0));
  else teardown();
}

function teardown() {
  if (state.stream) state.stream.getTracks().forEach((t) => t.stop());
  if (state.ctx) state.ctx.close();
  state.stream = state.ctx = null;
  $("start").disabled = false;
  $("stop").disabled = true;
}

$("start").addEventListener("click", start);
$("stop").addEventListener("click", stop);
loadModel().catch((err) => setStatus("server unreachable: " + err.message));
