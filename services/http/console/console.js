// omnisift console: plain JS over the REST API (docs/architecture.md, "Console"). The API key lives in this tab's
// sessionStorage and travels only in the Authorization header; it is never put in a URL or written to the console.
"use strict";

const KEY_STORAGE = "omnisift.apiKey";
const POLL_MS = 3000;
const MIN_SPAN_MS = 10 * 1000;
const MAX_SPAN_MS = 24 * 3600 * 1000; // GET /v1/clips lists at most a day at once
const TICKS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600];

const $ = (id) => document.getElementById(id);
const state = {
  cameras: [], statuses: {}, selected: null, view: null, follow: true, events: [], clips: [], gaps: [], firings: [],
  firingsServed: null, // GET /v1/firings (alerts): drawn when the service has it, else never asked again
  evidence: [], selectedEvent: null, clip: null, stillUrl: null, loading: 0, dragging: null,
};

// ---- the API ----------------------------------------------------------------------------------------------

function apiKey() { return sessionStorage.getItem(KEY_STORAGE) || ""; }

function authHeaders(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

async function failure(response) {
  let code = "http_" + response.status, message = response.statusText || "request failed";
  try { ({ code, message } = (await response.json()).error); } catch (_) { /* not the JSON error shape */ }
  if (response.status === 401) message = "the API key is missing or wrong: enter it above";
  return new ApiError(response.status, code, message);
}

async function api(path, { method = "GET", body } = {}) {
  const init = { method, headers: authHeaders(body ? { "Content-Type": "application/json" } : {}) };
  if (body) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  if (!response.ok) throw await failure(response);
  return response.status === 204 ? null : response.json();
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value != null) search.set(name, value);
  return search.toString();
}

function say(message, isError = false) {
  const status = $("status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

// ---- times ------------------------------------------------------------------------------------------------

const formats = new Map();
function formatter(zone, withDate, withSeconds) {
  const name = `${zone}|${withDate}|${withSeconds}`;
  if (!formats.has(name)) {
    const options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone: zone };
    if (withSeconds) options.second = "2-digit";
    if (withDate) Object.assign(options, { year: "numeric", month: "2-digit", day: "2-digit" });
    try { formats.set(name, new Intl.DateTimeFormat("en-GB", options)); }
    catch (_) { formats.set(name, new Intl.DateTimeFormat("en-GB", { ...options, timeZone: "UTC" })); }
  }
  return formats.get(name);
}
function zoneOf(cameraId) {
  const camera = state.cameras.find((c) => c.camera_id === cameraId);
  return camera ? camera.timezone : "UTC";
}
function fmt(ms, zone, { date = false, seconds = true } = {}) {
  const parts = Object.fromEntries(
    formatter(zone, date, seconds).formatToParts(new Date(ms)).map((part) => [part.type, part.value]));
  const time = [parts.hour, parts.minute, seconds ? parts.second : null].filter((p) => p != null).join(":");
  return date ? `${parts.year}-${parts.month}-${parts.day} ${time}` : time;
}
function fmtDuration(seconds) {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}
function fmtRange(startMs, endMs, zone) {
  return `${fmt(startMs, zone, { date: true })} – ${fmt(endMs, zone)} ${zone}`;
}
const ms = (iso) => Date.parse(iso);
const iso = (t) => new Date(t).toISOString();

// ---- cameras ----------------------------------------------------------------------------------------------

async function refreshCameras() {
  const cameras = await api("/v1/cameras");
  const statuses = {};
  await Promise.all(cameras.filter((c) => c.streaming).map(async (c) => {
    try { statuses[c.camera_id] = await api(`/v1/streams/${encodeURIComponent(c.camera_id)}`); }
    catch (error) { if (error.status !== 404) throw error; }
  }));
  state.cameras = cameras;
  state.statuses = statuses;
  renderCameras();
  if (!state.selected && cameras.length) selectCamera(cameras[0].camera_id);
}

// Polling redraws the camera table and the timeline every few seconds: whatever had the focus gets it back, so
// a keyboard user (or a click in progress) is not thrown out of the list.
function keepingFocus(container, redraw) {
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.key : null;
  redraw();
  if (key) {
    const again = [...container.querySelectorAll("[data-key]")].find((el) => el.dataset.key === key);
    if (again) again.focus();
  }
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

let camerasDrawn = "";
function renderCameras() {
  const drawn = JSON.stringify([state.cameras, state.statuses, state.selected]);
  if (drawn === camerasDrawn) return; // nothing changed: leave the rows (and a click on them) alone
  camerasDrawn = drawn;
  keepingFocus($("cameras"), drawCameras);
}

function drawCameras() {
  const body = $("cameras").tBodies[0];
  body.replaceChildren();
  $("no-cameras").hidden = state.cameras.length > 0;
  for (const camera of state.cameras) {
    const status = state.statuses[camera.camera_id];
    const row = body.insertRow();
    row.dataset.camera = camera.camera_id;
    row.classList.toggle("selected", camera.camera_id === state.selected);
    const select = document.createElement("button");
    select.type = "button";
    select.className = "camera";
    select.textContent = camera.camera_id;
    select.setAttribute("aria-pressed", String(camera.camera_id === state.selected));
    select.setAttribute("aria-label", `Show the timeline of ${camera.camera_id}`);
    select.dataset.key = `select:${camera.camera_id}`;
    select.addEventListener("click", () => selectCamera(camera.camera_id));
    row.insertCell().append(select);
    const current = status ? status.state : camera.streaming ? "unassigned" : "stored";
    cell(row, current, `state-${current}`);
    cell(row, status && status.lag_s != null ? fmtDuration(status.lag_s) : "–");
    cell(row, status ? String(status.reconnects) : "–");
    cell(row, String(camera.clips));
    const gaps = status ? status.gaps : [];
    const gapCell = cell(row, String(gaps.length));
    if (gaps.length) gapCell.title = gaps.slice(0, 5).map((g) => `${g.start} – ${g.end}: ${g.reason}`).join("\n");
    const actions = row.insertCell();
    if (camera.streaming) {
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "Remove";
      remove.setAttribute("aria-label", `Remove camera ${camera.camera_id} (its stored clips stay)`);
      remove.dataset.key = `remove:${camera.camera_id}`;
      remove.addEventListener("click", () => removeCamera(camera.camera_id));
      actions.append(remove);
    }
  }
}

async function removeCamera(cameraId) {
  try {
    await api(`/v1/streams/${encodeURIComponent(cameraId)}`, { method: "DELETE" });
    say(`Removed ${cameraId}; its stored clips stay until retention removes them.`);
    await refreshCameras();
  } catch (error) { say(`Could not remove ${cameraId}: ${error.message}`, true); }
}

async function addCamera(event) {
  event.preventDefault();
  const form = event.target;
  const body = { camera_id: form.camera_id.value.trim(), url: form.url.value.trim() };
  if (form.timezone.value.trim()) body.timezone = form.timezone.value.trim();
  try {
    await api("/v1/streams", { method: "POST", body });
    say(`Added ${body.camera_id}.`);
    form.reset();
    await refreshCameras();
    selectCamera(body.camera_id);
  } catch (error) { say(`Could not add ${body.camera_id}: ${error.message}`, true); }
}

function upload(event) {
  event.preventDefault();
  const form = event.target;
  const data = new FormData();
  data.set("camera_id", form.camera_id.value.trim());
  if (form.start_time.value.trim()) data.set("start_time", form.start_time.value.trim());
  data.set("file", form.file.files[0]);
  const bar = $("upload-progress"), jobBar = $("job-progress"), note = $("upload-status");
  bar.value = 0; jobBar.value = 0;
  note.classList.remove("error");
  note.textContent = "Uploading…";
  const request = new XMLHttpRequest();
  request.open("POST", "/v1/files");
  for (const [name, value] of Object.entries(authHeaders())) request.setRequestHeader(name, value);
  request.upload.addEventListener("progress", (e) => { if (e.lengthComputable) bar.value = e.loaded / e.total; });
  request.addEventListener("load", async () => {
    let body = {};
    try { body = JSON.parse(request.responseText); } catch (_) { /* not JSON */ }
    if (request.status !== 202) {
      note.classList.add("error");
      note.textContent = `Upload refused: ${body.error ? body.error.message : request.statusText}`;
      return;
    }
    bar.value = 1;
    note.textContent = "Uploaded; ingesting…";
    await followJob(body.job_id, body.camera_id);
  });
  request.addEventListener("error", () => { note.classList.add("error"); note.textContent = "Upload failed."; });
  request.send(data);
}

async function followJob(jobId, cameraId) {
  const note = $("upload-status");
  for (;;) {
    let job;
    try { job = await api(`/v1/jobs/${jobId}`); } catch (error) { note.textContent = error.message; return; }
    $("job-progress").value = job.progress;
    note.textContent = `Ingest ${job.state}: ${job.clips} clip(s), ${(job.progress * 100).toFixed(0)}%`;
    if (job.state !== "queued" && job.state !== "running") {
      if (job.error) { note.classList.add("error"); note.textContent += ` — ${job.error}`; }
      await refreshCameras();
      state.follow = true;
      selectCamera(cameraId);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// ---- the timeline -----------------------------------------------------------------------------------------

function selectCamera(cameraId) {
  if (state.selected !== cameraId) {
    state.selected = cameraId;
    state.follow = true;
    state.selectedEvent = null;
    $("event-section").hidden = true;
  }
  $("timeline-camera").textContent = `· ${cameraId} (${zoneOf(cameraId)})`;
  renderCameras();
  if (state.follow) fitView();
  loadTimeline();
}

function fitView() {
  const camera = state.cameras.find((c) => c.camera_id === state.selected);
  let end = camera && camera.newest ? ms(camera.newest) : Date.now();
  let start = camera && camera.oldest ? ms(camera.oldest) : end - 600 * 1000;
  start = Math.max(start, end - MAX_SPAN_MS);
  const pad = Math.max((end - start) * 0.03, 1000);
  setView(start - pad, end + pad, true);
}

function setView(start, end, follow = false) {
  let span = Math.min(Math.max(end - start, MIN_SPAN_MS), MAX_SPAN_MS);
  const middle = (start + end) / 2;
  state.view = { start: middle - span / 2, end: middle + span / 2 };
  state.follow = follow;
  const zone = zoneOf(state.selected);
  $("timeline-range").textContent = fmtRange(state.view.start, state.view.end, zone);
  $("timeline-range").dataset.span = String(span / 1000);
  renderTimeline();
  scheduleLoad();
}

function zoom(factor, anchor = 0.5) {
  const { start, end } = state.view;
  const at = start + (end - start) * anchor;
  setView(at - (at - start) * factor, at + (end - at) * factor);
}

function pan(fraction) {
  const shift = (state.view.end - state.view.start) * fraction;
  setView(state.view.start + shift, state.view.end + shift);
}

let loadTimer = null;
function scheduleLoad() { clearTimeout(loadTimer); loadTimer = setTimeout(loadTimeline, 150); }

async function loadTimeline() {
  if (!state.selected || !state.view) return;
  const camera = state.selected;
  const range = { camera_id: camera, start: iso(Math.max(state.view.start, 0)), end: iso(state.view.end) };
  try {
    const [events, clips, firings] = await Promise.all([
      api(`/v1/events?${query(range)}`), api(`/v1/clips?${query(range)}`), loadFirings(range)]);
    if (camera !== state.selected) return;
    state.events = events;
    state.clips = clips;
    state.firings = firings;
    state.gaps = (state.statuses[camera] || { gaps: [] }).gaps;
    renderTimeline();
  } catch (error) { say(`Timeline: ${error.message}`, true); }
}

async function loadFirings(range) {
  if (state.firingsServed === false) return [];
  try {
    const firings = await api(`/v1/firings?${query({ since: range.start })}`);
    state.firingsServed = true;
    $("firings-legend").hidden = false;
    return firings.filter((f) => f.camera_id === range.camera_id && ms(f.start) < ms(range.end));
  } catch (error) {
    if (error.status !== 404 && error.status !== 405) throw error;
    state.firingsServed = false; // a service without alerts
    return [];
  }
}

function xOf(t, width) { return ((t - state.view.start) / (state.view.end - state.view.start)) * width; }

function renderTimeline() {
  const box = $("timeline");
  const width = box.clientWidth;
  if (!state.view || !width) return;
  drawDensity(width);
  const zone = zoneOf(state.selected);

  const gaps = $("gaps");
  gaps.replaceChildren(...state.gaps.map((g) => span("gap-mark", ms(g.start), ms(g.end), width, `gap: ${g.reason}`)));

  const marks = $("evidence-marks");
  marks.replaceChildren(...state.evidence.filter((e) => e.camera_id === state.selected)
    .map((e) => {
      const mark = span("evidence-mark", ms(e.start), ms(e.end), width, "evidence");
      mark.dataset.clip = e.clip_id;
      return mark;
    }));

  const events = $("events");
  keepingFocus(events, () => events.replaceChildren(...state.events.map((e) => {
    const button = document.createElement("button");
    button.type = "button";
    const start = ms(e.start), end = ms(e.end);
    button.className = "event-mark" + (e.activity > 0 ? "" : " sound");
    button.classList.toggle("selected", state.selectedEvent && state.selectedEvent.start === e.start);
    button.setAttribute("role", "listitem");
    button.setAttribute("aria-label", `Event ${fmtRange(start, end, zone)}: activity ${e.activity.toFixed(2)}, ` +
      `sound ${e.audio_salience.toFixed(2)}, ${e.clip_ids.length} clip(s)`);
    button.title = button.getAttribute("aria-label");
    const left = xOf(start, width);
    button.style.left = `${left}px`;
    button.style.width = `${Math.max(xOf(end, width) - left, 6)}px`;
    button.dataset.key = `${e.start}/${e.end}`;
    button.addEventListener("click", () => showEvent(e));
    return button;
  })));
  const firings = $("firings");
  keepingFocus(firings, () => firings.replaceChildren(...state.firings.map((f) => {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "firing-mark";
    button.setAttribute("role", "listitem");
    const start = ms(f.start), end = ms(f.end);
    button.setAttribute("aria-label", `Alert ${f.rule_name} (${f.severity}) ${fmtRange(start, end, zone)}`);
    button.title = button.getAttribute("aria-label");
    const left = xOf(start, width);
    button.style.left = `${left}px`;
    button.style.width = `${Math.max(xOf(end, width) - left, 6)}px`;
    button.dataset.key = f.firing_id;
    button.addEventListener("click", () => showClips(`Alert ${f.rule_name} on ${f.camera_id}`,
      `${fmtRange(start, end, zone)} · ${f.severity}`, f.clip_ids));
    return button;
  })));
  drawAxis(width, zone);
}

function span(className, start, end, width, title) {
  const div = document.createElement("div");
  div.className = className;
  const left = Math.max(xOf(start, width), -2);
  div.style.left = `${left}px`;
  div.style.width = `${Math.max(Math.min(xOf(end, width), width + 2) - left, 2)}px`;
  div.title = title;
  return div;
}

function drawDensity(width) {
  const canvas = $("density");
  const ratio = window.devicePixelRatio || 1;
  const height = canvas.clientHeight;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const g = canvas.getContext("2d");
  g.scale(ratio, ratio);
  g.clearRect(0, 0, width, height);
  g.fillStyle = "rgba(58, 123, 213, 0.75)";
  for (const clip of state.clips) {
    const x0 = xOf(ms(clip.start), width), x1 = xOf(ms(clip.end), width);
    if (x1 < 0 || x0 > width) continue;
    const share = clip.tokens_source ? clip.tokens_kept / clip.tokens_source : 0; // kept of what there was
    const h = Math.max(share * (height - 4), 1);
    g.fillRect(x0, height - h, Math.max(x1 - x0 - 0.5, 1), h);
  }
}

function drawAxis(width, zone) {
  const spanS = (state.view.end - state.view.start) / 1000;
  const step = (TICKS_S.find((s) => spanS / s <= Math.max(width / 90, 2)) || 43200) * 1000;
  const axis = $("axis");
  const labels = [];
  for (let t = Math.ceil(state.view.start / step) * step; t <= state.view.end; t += step) {
    const label = document.createElement("span");
    label.style.left = `${xOf(t, width)}px`;
    label.textContent = fmt(t, zone, { seconds: step < 60000 });
    labels.push(label);
  }
  axis.replaceChildren(...labels);
}

function timelineKeys(event) {
  if (event.target !== $("timeline")) return;
  const actions = {
    ArrowLeft: () => pan(-0.25), ArrowRight: () => pan(0.25), "+": () => zoom(0.5), "=": () => zoom(0.5),
    "-": () => zoom(2), Home: () => fitView(),
  };
  if (actions[event.key]) { event.preventDefault(); actions[event.key](); }
}

function timelineWheel(event) {
  event.preventDefault();
  const box = $("timeline").getBoundingClientRect();
  zoom(event.deltaY > 0 ? 1.5 : 1 / 1.5, (event.clientX - box.left) / box.width);
}

function dragStart(event) {
  if (event.target.closest("button")) return;
  state.dragging = { x: event.clientX, view: { ...state.view } };
  $("timeline").setPointerCapture(event.pointerId);
}
function dragMove(event) {
  if (!state.dragging) return;
  const width = $("timeline").clientWidth;
  const { x, view } = state.dragging;
  const shift = ((x - event.clientX) / width) * (view.end - view.start);
  if (Math.abs(event.clientX - x) > 2) setView(view.start + shift, view.end + shift);
}
function dragEnd() { state.dragging = null; }

// ---- an event, its clips, a clip's still and what it kept ---------------------------------------------------

function showEvent(event) {
  state.selectedEvent = event;
  const zone = zoneOf(event.camera_id);
  showClips(`Event on ${event.camera_id}`, `${fmtRange(ms(event.start), ms(event.end), zone)} · activity ` +
    `${event.activity.toFixed(3)} · sound ${event.audio_salience.toFixed(3)}`, event.clip_ids);
  renderTimeline();
}

function showClips(title, summary, clipIds) {
  $("event-section").hidden = false;
  $("event-title").textContent = title;
  $("event-summary").textContent = summary;
  renderClipButtons(clipIds);
  if (clipIds.length) showClip(clipIds[0]);
}

function renderClipButtons(clipIds) {
  const list = $("event-clips");
  list.replaceChildren(...clipIds.map((clipId) => {
    const button = document.createElement("button");
    button.type = "button";
    button.setAttribute("role", "listitem");
    button.dataset.clip = clipId;
    const start = Number(clipId.split("@").pop());
    button.textContent = `Clip ${fmt(start, zoneOf(clipId.split("@")[0]))}`;
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", () => showClip(clipId));
    return button;
  }));
}

async function showClip(clipId) {
  for (const b of $("event-clips").querySelectorAll("button")) {
    b.setAttribute("aria-pressed", String(b.dataset.clip === clipId));
  }
  $("event-section").hidden = false;
  try {
    const clip = await api(`/v1/clips/${encodeURIComponent(clipId)}?detail=tokens`);
    state.clip = clip;
    const zone = zoneOf(clip.camera_id);
    $("clip-detail").hidden = false;
    $("clip-title").textContent = `Clip ${clip.clip_id}`;
    const kept = clip.video_tokens_kept + clip.audio_tokens_kept;
    const source = clip.video_tokens_source + clip.audio_tokens_source;
    $("still-caption").textContent = `${fmtRange(ms(clip.start), ms(clip.end), zone)} · kept ${kept} of ${source} ` +
      `tokens (${clip.video_tokens_kept} video, ${clip.audio_tokens_kept} audio)` +
      (clip.tokens.scores_known ? "" : " · scores unknown (stored before scores were kept)");
    const slider = $("cell-frame");
    slider.max = String(Math.max(clip.tokens.grid.frames - 1, 0));
    slider.value = String(clip.still ? clip.still.frame : 0);
    await loadStill(clip);
    drawOverlay();
    drawAudioMarks(clip);
    renderChunkScores(clip);
  } catch (error) { say(`Clip ${clipId}: ${error.message}`, true); }
}

async function loadStill(clip) {
  const img = $("still");
  if (state.stillUrl) URL.revokeObjectURL(state.stillUrl);
  state.stillUrl = null;
  if (!clip.still) {
    img.removeAttribute("src");
    img.alt = "no still for this clip";
    return;
  }
  const response = await fetch(`/v1/clips/${encodeURIComponent(clip.clip_id)}/still`, { headers: authHeaders() });
  if (!response.ok) throw await failure(response);
  state.stillUrl = URL.createObjectURL(await response.blob());
  await new Promise((resolve) => { img.onload = resolve; img.onerror = resolve; img.src = state.stillUrl; });
  const shown = fmt(ms(clip.start) + clip.still.offset_s * 1000, zoneOf(clip.camera_id));
  img.alt = `Still of ${clip.camera_id} at ${shown}, kept video cells outlined`;
}

function normalise(values) {
  const known = values.filter((v) => v != null);
  const lo = Math.min(...known), hi = Math.max(...known);
  return (v) => (v == null || hi <= lo ? 1 : (v - lo) / (hi - lo));
}

function drawOverlay() {
  const clip = state.clip;
  const canvas = $("overlay");
  if (!clip || !clip.still) { canvas.width = 0; return; }
  const frame = Number($("cell-frame").value);
  const { rows, cols } = clip.tokens.grid;
  canvas.width = clip.still.width;
  canvas.height = clip.still.height;
  const g = canvas.getContext("2d");
  const w = canvas.width / cols, h = canvas.height / rows;
  const { cells, scores } = clip.tokens.video;
  const strength = normalise(scores || []);
  let count = 0;
  cells.forEach(([f, row, col], i) => {
    if (f !== frame) return;
    count += 1;
    const s = scores ? strength(scores[i]) : 1;
    g.fillStyle = `rgba(76, 194, 255, ${0.12 + 0.38 * s})`;
    g.fillRect(col * w, row * h, w, h);
    g.strokeStyle = "rgba(76, 194, 255, 0.9)";
    g.lineWidth = 1;
    g.strokeRect(col * w + 0.5, row * h + 0.5, w - 1, h - 1);
  });
  canvas.dataset.cells = String(count);
  const offset = clip.tokens.frames[frame] ? clip.tokens.frames[frame].offset_s : 0;
  const stillNote = clip.still.frame === frame ? "the still's frame" : `the still shows frame ${clip.still.frame}`;
  $("cell-frame-out").textContent = `frame ${frame} (+${offset.toFixed(1)} s, ${stillNote}): ${count} of ` +
    `${rows * cols} cells kept`;
}

function drawAudioMarks(clip) {
  const canvas = $("audio-marks");
  const width = canvas.clientWidth || 480, height = canvas.clientHeight || 28;
  canvas.width = width; canvas.height = height;
  const g = canvas.getContext("2d");
  g.clearRect(0, 0, width, height);
  const total = clip.audio_tokens_source;
  const { indices, scores } = clip.tokens.audio;
  const strength = normalise(scores || []);
  g.fillStyle = "#c878ff";
  indices.forEach((index, i) => {
    const s = scores ? strength(scores[i]) : 1;
    const h = 4 + s * (height - 6);
    g.fillRect((index / Math.max(total, 1)) * width, height - h, Math.max(width / Math.max(total, 1), 1), h);
  });
  canvas.setAttribute("aria-label", `Kept audio tokens: ${indices.length} of ${total}` +
    (clip.has_audio ? "" : " (the clip has no audio)"));
}

function renderChunkScores(clip) {
  const body = $("chunk-scores").tBodies[0];
  body.replaceChildren();
  clip.activity.forEach((activity, i) => {
    const row = body.insertRow();
    cell(row, `${i * 2}–${i * 2 + 2} s`);
    for (const value of [activity, clip.audio_salience[i]]) {
      const td = row.insertCell();
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = `${Math.round(value * 60)}px`;
      td.append(bar, document.createTextNode(value.toFixed(3)));
    }
  });
}

// ---- questions --------------------------------------------------------------------------------------------

async function ask(event) {
  event.preventDefault();
  const question = $("question").value.trim();
  if (!question) return;
  const body = { question, stream: true };
  if (state.selected && state.view) {
    body.cameras = [state.selected];
    body.start = iso(Math.max(state.view.start, 0));
    body.end = iso(Math.min(state.view.end, Date.now() + 3600 * 1000));
  }
  const answer = $("answer");
  answer.textContent = "";
  answer.removeAttribute("data-done");
  $("evidence").replaceChildren();
  try {
    const response = await fetch("/v1/query", {
      method: "POST", headers: authHeaders({ "Content-Type": "application/json" }), body: JSON.stringify(body),
    });
    if (!response.ok) throw await failure(response);
    await readEvents(response, (name, data) => {
      if (name === "evidence") showEvidence(data.evidence);
      else if (name === "token") answer.textContent += data.text;
      else if (name === "done") {
        answer.dataset.done = data.answer_source;
        say(`Answered from the ${data.answer_source} in ${Math.round(data.latency_ms)} ms; sent ` +
          `${data.usage.sent_tokens} of ${data.usage.full_tokens} tokens.`);
      } else if (name === "error") throw new ApiError(500, data.error.code, data.error.message);
    });
  } catch (error) {
    answer.textContent += (answer.textContent ? "\n" : "") + `Error: ${error.message}`;
  }
}

async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      onEvent(name, data ? JSON.parse(data) : {});
    }
  }
}

function showEvidence(evidence) {
  state.evidence = evidence;
  const list = $("evidence");
  list.replaceChildren(...evidence.map((e) => {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `${e.camera_id} ${fmtRange(ms(e.start), ms(e.end), zoneOf(e.camera_id))}`;
    button.addEventListener("click", () => {
      if (state.selected !== e.camera_id) selectCamera(e.camera_id);
      renderClipButtons([e.clip_id]);
      showClip(e.clip_id);
    });
    item.append(button, document.createTextNode(
      ` · activity ${e.activity.toFixed(2)}, sound ${e.audio_salience.toFixed(2)}, ` +
      `${e.video_tokens_kept + e.audio_tokens_kept} tokens`));
    return item;
  }));
  const mine = evidence.filter((e) => e.camera_id === state.selected);
  if (mine.length && state.view) {
    const first = Math.min(...mine.map((e) => ms(e.start))), last = Math.max(...mine.map((e) => ms(e.end)));
    if (first < state.view.start || last > state.view.end) {
      const pad = Math.max((last - first) * 0.1, 5000);
      setView(first - pad, last + pad);
    }
  }
  renderTimeline();
}

// ---- wiring -----------------------------------------------------------------------------------------------

async function poll() {
  try {
    await refreshCameras();
    if (state.selected) {
      if (state.follow) fitView();
      await loadTimeline();
    }
    if (!$("status").classList.contains("error") || $("status").textContent.startsWith("Connection")) say("");
  } catch (error) {
    say(error.status === 401 ? error.message : `Connection: ${error.message}`, true);
  }
}

function start() {
  $("api-key").value = apiKey() ? "••••••••" : "";
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("api-key").value;
    if (value && value !== "••••••••") sessionStorage.setItem(KEY_STORAGE, value);
    if (!value) sessionStorage.removeItem(KEY_STORAGE);
    $("api-key").value = apiKey() ? "••••••••" : "";
    say("Key saved for this tab.");
    poll();
  });
  $("add-form").addEventListener("submit", addCamera);
  $("upload-form").addEventListener("submit", upload);
  $("ask-form").addEventListener("submit", ask);
  $("zoom-in").addEventListener("click", () => zoom(0.5));
  $("zoom-out").addEventListener("click", () => zoom(2));
  $("pan-left").addEventListener("click", () => pan(-0.25));
  $("pan-right").addEventListener("click", () => pan(0.25));
  $("zoom-fit").addEventListener("click", () => fitView());
  $("cell-frame").addEventListener("input", drawOverlay);
  const timeline = $("timeline");
  timeline.addEventListener("keydown", timelineKeys);
  timeline.addEventListener("wheel", timelineWheel, { passive: false });
  timeline.addEventListener("pointerdown", dragStart);
  timeline.addEventListener("pointermove", dragMove);
  timeline.addEventListener("pointerup", dragEnd);
  window.addEventListener("resize", renderTimeline);
  poll();
  setInterval(poll, POLL_MS);
}

document.addEventListener("DOMContentLoaded", start);
