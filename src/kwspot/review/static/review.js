// kwspot review page: one clip at a time, judged with the keyboard or the mouse. Every label,
// name and comment goes into the page as text (textContent), never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const S = { annotator: params.get("annotator") || "", clip: null, verdict: null, segments: [],
            samples: null, envelope: null, rate: 16000, duration: 0,
            view: { start: 0, span: 0 }, spectro: null, audioUrl: null, busy: false };
const ENVELOPE_BLOCK = 256;  // samples per min/max pair, for drawing long recordings

async function api(path, options = {}) {
  const res = await fetch(path, options);
  const body = await res.json().catch(() => ({ error: res.statusText }));
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}

function message(text, bad = false) {
  $("message").textContent = text;
  $("message").className = bad ? "warn" : "ok";
}

function query() { return "?annotator=" + encodeURIComponent(S.annotator); }

function showProgress(p) {
  $("progress").textContent = `${p.done} / ${p.clips} clips reviewed` + (p.k > 1 ? ` (×${p.k})` : "");
  $("bar").firstElementChild.style.width = `${(100 * p.done / Math.max(1, p.clips)).toFixed(1)}%`;
  $("counts").textContent = Object.entries(p.annotators).map(([a, n]) => `${a}: ${n}`).join(" · ");
}

async function loadState() {
  const st = await api("/api/state" + (S.annotator ? query() : ""));
  S.annotator = st.annotator;
  $("annotator").textContent = st.annotator;
  const list = $("labels");
  list.replaceChildren(...st.labels.map((l) => { const o = document.createElement("option"); o.value = l; return o; }));
  showProgress(st.progress);
}

async function next() {
  const res = await api("/api/next" + query(), { method: "POST" });
  if (res.done) {
    S.clip = null;
    $("work").style.display = "none";
    $("done").style.display = "block";
    return;
  }
  await render(res.clip);
}

async function render(clip) {
  S.clip = clip;
  if (document.activeElement && document.activeElement !== document.body) {
    document.activeElement.blur();  // a new clip: the shortcut keys work again at once
  }
  clearForm();
  $("label").textContent = clip.label;
  $("name").textContent = `${clip.name} · ${clip.split} · speaker ${clip.speaker} · ` +
    (clip.duration_s == null ? "unreadable header" : `${clip.duration_s.toFixed(2)} s`);
  const pred = $("prediction");
  pred.replaceChildren();
  if (clip.prediction) {
    const p = clip.prediction;
    pred.textContent = `model: ${p.label} (${(100 * p.score).toFixed(1)} %)` +
      (p.p_given == null ? "" : ` · p(label) ${(100 * p.p_given).toFixed(1)} %`);
    pred.className = p.agrees ? "ok" : "warn";
    if (!p.agrees) pred.textContent += " · model disagrees";
  }
  await loadAudio(clip);
  $("suggestions").replaceChildren();
  if (clip.long) loadSuggestions(clip.id);
  document.body.dataset.clip = clip.id;  // the clip on screen, for scripts and tests
}

async function loadAudio(clip) {
  S.samples = null;
  if (S.audioUrl) URL.revokeObjectURL(S.audioUrl);
  try {
    const res = await fetch(`/api/clips/${clip.id}/audio`);
    if (!res.ok) throw new Error((await res.json()).error);
    const bytes = await res.arrayBuffer();
    if (S.clip !== clip) return;  // the user moved on meanwhile
    S.audioUrl = URL.createObjectURL(new Blob([bytes], { type: "audio/wav" }));
    $("audio").src = S.audioUrl;
    const ctx = new OfflineAudioContext(1, 1, 16000);
    const buffer = await ctx.decodeAudioData(bytes.slice(0));
    if (S.clip !== clip) return;
    S.samples = buffer.getChannelData(0);
    S.rate = buffer.sampleRate;
    S.duration = buffer.duration;
    S.envelope = envelope(S.samples);
  } catch (err) {
    message("cannot play this clip: " + err.message, true);
    S.duration = clip.duration_s || 1;
  }
  S.view = { start: 0, span: S.duration };
  S.spectro = new Image();
  S.spectro.onload = draw;
  S.spectro.src = `/api/clips/${clip.id}/spectrogram.png`;
  draw();
}

function envelope(samples) {
  // min/max per block: drawing an hour from this is 256x less work than from the samples
  const n = Math.ceil(samples.length / ENVELOPE_BLOCK), lo = new Float32Array(n), hi = new Float32Array(n);
  for (let b = 0; b < n; b++) {
    let a = 0, z = 0;
    for (let i = b * ENVELOPE_BLOCK, e = Math.min(samples.length, i + ENVELOPE_BLOCK); i < e; i++) {
      const v = samples[i]; if (v < a) a = v; if (v > z) z = v;
    }
    lo[b] = a; hi[b] = z;
  }
  return { lo, hi };
}

async function loadSuggestions(id) {
  const res = await api(`/api/clips/${id}/suggestions`);
  if (!S.clip || S.clip.id !== id) return;  // the user moved on meanwhile
  const box = $("suggestions");
  for (const seg of res.segments) {
    const b = document.createElement("button");
    b.textContent = `+ model: ${seg.label} ${seg.start.toFixed(2)}–${seg.end.toFixed(2)} s (${seg.score})`;
    b.className = "own-enter";
    b.addEventListener("click", () => { addSegment(seg.start, seg.end, seg.label); b.remove(); });
    box.append(b);
  }
}

function draw() {
  const w = $("wave"), g = w.getContext("2d"), W = w.width, H = w.height;
  g.clearRect(0, 0, W, H);
  const { start, span } = S.view;
  const x = (t) => (t - start) / span * W;
  g.fillStyle = "rgba(36, 99, 235, 0.15)";
  for (const seg of S.segments) g.fillRect(x(seg.start), 0, x(seg.end) - x(seg.start), H);
  if (S.samples) {
    g.strokeStyle = "#2463eb";
    g.beginPath();
    const from = Math.floor(start * S.rate), per = span * S.rate / W;
    // zoomed out far, read the envelope (blocks of samples), else the samples themselves
    const coarse = per >= 4 * ENVELOPE_BLOCK;
    const unit = coarse ? ENVELOPE_BLOCK : 1;
    const los = coarse ? S.envelope.lo : S.samples, his = coarse ? S.envelope.hi : S.samples;
    for (let px = 0; px < W; px++) {
      let lo = 0, hi = 0;
      const a = Math.floor((from + px * per) / unit);
      const b = Math.min(los.length, Math.floor((from + (px + 1) * per) / unit));
      for (let i = a; i < b; i++) { if (los[i] < lo) lo = los[i]; if (his[i] > hi) hi = his[i]; }
      g.moveTo(px + 0.5, H / 2 - hi * H / 2);
      g.lineTo(px + 0.5, H / 2 - lo * H / 2 + 1);
    }
    g.stroke();
  }
  const s = $("spectro"), sg = s.getContext("2d");
  sg.clearRect(0, 0, s.width, s.height);
  if (S.spectro && S.spectro.complete && S.spectro.naturalWidth && S.duration) {
    const img = S.spectro, scale = img.naturalWidth / S.duration;
    sg.drawImage(img, start * scale, 0, span * scale, img.naturalHeight, 0, 0, s.width, s.height);
  }
  const t = $("audio").currentTime || 0;
  for (const c of [g, sg]) {
    c.strokeStyle = "#e8590c";
    c.beginPath(); c.moveTo(x(t), 0); c.lineTo(x(t), c.canvas.height); c.stroke();
  }
  $("view").textContent = `${start.toFixed(2)}–${(start + span).toFixed(2)} s of ${S.duration.toFixed(2)} s`;
}

function zoom(factor) {
  const t = $("audio").currentTime || S.view.start + S.view.span / 2;
  const span = Math.min(S.duration, Math.max(0.1, S.view.span * factor));
  const start = Math.max(0, Math.min(S.duration - span, t - span / 2));
  S.view = { start, span };
  draw();
}

function setVerdict(v) {
  S.verdict = v;
  $("correct").classList.toggle("on", v === "correct");
  $("incorrect").classList.toggle("on", v === "incorrect");
}

function addSegment(start, end, label) {
  // at the play position; at the very end of the clip, the last second instead
  let t = start ?? ($("audio").currentTime || 0);
  if (start === undefined && S.duration && t > S.duration - 0.1) t = Math.max(0, S.duration - 1);
  S.segments.push({ start: +t.toFixed(2), end: +Math.min(end ?? t + 1, S.duration || t + 1).toFixed(2),
                    label: label ?? ($("newlabel").value.trim() || (S.clip ? S.clip.label : "")) });
  renderSegments(S.segments.length - 1);
}

function renderSegments(focusIndex) {
  const body = $("segments");
  body.replaceChildren();
  S.segments.forEach((seg, i) => {
    const tr = document.createElement("tr");
    for (const key of ["start", "end", "label"]) {
      const td = document.createElement("td"), input = document.createElement("input");
      input.type = "text";
      input.value = seg[key];
      input.dataset.key = key;
      input.className = "seg-" + key;
      input.addEventListener("change", () => {
        seg[key] = key === "label" ? input.value.trim() : parseFloat(input.value);
        draw();
      });
      td.append(input);
      tr.append(td);
    }
    const del = document.createElement("button");
    del.textContent = "Delete";
    del.className = "own-enter";
    del.addEventListener("click", () => { S.segments.splice(i, 1); renderSegments(); });
    const td = document.createElement("td");
    td.append(del);
    tr.append(td);
    body.append(tr);
    if (i === focusIndex) tr.querySelector("input").focus();  // at once: the next key is for it
  });
  draw();
}

function clearForm() {
  setVerdict(null);
  $("newlabel").value = "";
  $("comment").value = "";
  S.segments = [];
  renderSegments();
  message("");
}

async function submit() {
  if (!S.clip || S.busy) return;  // one submit at a time: a second Enter does not duplicate
  // take what is typed in segment fields even if they still have focus
  document.querySelectorAll("#segments input").forEach((input) => input.dispatchEvent(new Event("change")));
  if (!S.verdict) { message("choose (1) Correct or (2) Incorrect first", true); return; }
  const body = { clip_id: S.clip.id, annotator: S.annotator, verdict: S.verdict,
                 label: S.verdict === "incorrect" ? $("newlabel").value.trim() || null : null,
                 comment: $("comment").value, segments: S.segments };
  S.busy = true;
  let res;
  try {
    res = await api("/api/judgements", { method: "POST",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  } catch (err) {
    S.busy = false;
    message("not saved: " + err.message, true);
    return;
  }
  try {
    showProgress(res.progress);
    await next();
    await loadHistory();  // after the next clip is up: a full history means "ready"
    message(`saved #${res.id}`);
  } catch (err) {
    message(`saved #${res.id}, but the next clip did not load: ${err.message}`, true);
  } finally {
    S.busy = false;
  }
}

async function loadHistory() {
  const res = await api("/api/history" + query());
  $("history").replaceChildren(...res.judgements.map((j) => {
    const tr = document.createElement("tr");
    tr.className = "judgement";
    for (const text of [j.name, j.verdict, j.label, j.comment, j.at]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    return tr;
  }));
}

function togglePlay() {
  const a = $("audio");
  if (a.paused) a.play().catch((err) => message("cannot play: " + err.message, true)); else a.pause();
}

document.addEventListener("keydown", (e) => {
  const t = e.target, typing = t.tagName === "INPUT" || t.tagName === "TEXTAREA";
  if (e.key === "Enter") {
    // Delete, a suggestion, Clear and Submit do their own thing on Enter; any other button
    // (Correct, Play, ...) was only clicked, so Enter still means submit & next
    if (t.tagName === "BUTTON" && t.classList.contains("own-enter")) return;
    e.preventDefault();
    submit();
    return;
  }
  if (e.key === "Escape") {
    e.preventDefault();
    if (typing) t.blur(); else clearForm();
    return;
  }
  if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
  const actions = {
    "1": () => setVerdict("correct"),
    "2": () => { setVerdict("incorrect"); $("newlabel").focus(); },
    "c": () => $("comment").focus(),
    "a": () => addSegment(),
    " ": togglePlay,
    "[": () => zoom(2),
    "]": () => zoom(0.5),
  };
  if (actions[e.key]) { e.preventDefault(); actions[e.key](); }
});

$("correct").addEventListener("click", () => setVerdict("correct"));
$("incorrect").addEventListener("click", () => { setVerdict("incorrect"); $("newlabel").focus(); });
$("submit").addEventListener("click", submit);
$("clear").addEventListener("click", clearForm);
$("play").addEventListener("click", togglePlay);
$("zoomin").addEventListener("click", () => zoom(0.5));
$("zoomout").addEventListener("click", () => zoom(2));
$("audio").addEventListener("timeupdate", draw);
$("wave").addEventListener("click", (e) => {
  const r = e.target.getBoundingClientRect();
  $("audio").currentTime = S.view.start + (e.clientX - r.left) / r.width * S.view.span;
  draw();
});

(async () => {
  try {
    await loadState();
    await loadHistory();
    await next();
  } catch (err) {
    message(err.message, true);
  }
})();
