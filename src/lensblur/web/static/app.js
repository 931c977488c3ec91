// lensblur web app: plain JavaScript, no dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { session: null, seq: 0, controller: null, shownSeq: 0, afterUrl: null, timer: null };

function message(text) { $("message").textContent = text || ""; }

async function errorText(response) {
  try { const body = await response.json(); return body.error || response.statusText; }
  catch (e) { return `${response.status} ${response.statusText}`; }
}

// ------------------------------------------------------------------ upload

async function upload(file) {
  if (!file) return;
  message("");
  $("status").textContent = `Reading ${file.name} and finding its depth…`;
  $("controls").disabled = true;
  let response;
  try {
    response = await fetch(`/api/sessions?name=${encodeURIComponent(file.name)}`, { method: "POST", body: file });
  } catch (e) { message(`Upload failed: ${e}`); return; }
  if (!response.ok) { message(await errorText(response)); $("status").textContent = ""; return; }
  const info = await response.json();
  if (state.session) fetch(`/api/sessions/${state.session.id}`, { method: "DELETE" }).catch(() => {});
  state.session = info;
  document.body.dataset.session = info.id;
  const renderer = $("renderer");
  renderer.innerHTML = "";
  for (const name of info.renderers) renderer.add(new Option(name, name));
  $("blur").max = (info.max_blur / info.width * 100).toFixed(2);
  $("blur").value = (info.default_blur / info.width * 100).toFixed(2);
  $("view-matte").disabled = !info.has_matte;
  $("focus-mark").hidden = true;
  $("download").hidden = true;
  $("before").src = `/api/sessions/${info.id}/preview?view=original`;
  $("drop").hidden = true;
  $("stage").hidden = false;
  $("controls").disabled = false;
  layout();
  describe();
  refresh(0);
}

function describe(extra) {
  const s = state.session;
  if (!s) return;
  $("status").textContent = `${s.name}: ${s.width}×${s.height} ${s.format}\ndepth: ${s.depth_source}` +
    `\nfocus disparity ${s.focus_disparity.toFixed(3)}` + (extra ? `\n${extra}` : "");
}

// ------------------------------------------------------------------ settings

function settings() {
  const s = state.session;
  const blurPx = parseFloat($("blur").value) / 100 * s.width;
  const out = {
    blur: blurPx.toFixed(2),
    focus_disparity: s.focus_disparity.toFixed(5),
    focus_range: $("focus-range").value,
    highlights: $("highlights").value,
    grain: $("grain").checked ? "on" : "off",
    shape: $("shape").value,
    renderer: $("renderer").value || "scatter",
  };
  if (out.shape === "blades") { out.blades = $("blades").value; out.rotation = $("rotation").value; }
  return out;
}

function updateLabels() {
  const s = state.session;
  const pct = parseFloat($("blur").value);
  $("blur-out").textContent = s ? `${pct.toFixed(2)}% · ${(pct / 100 * s.width).toFixed(0)} px` : `${pct}%`;
  $("range-out").textContent = parseFloat($("focus-range").value).toFixed(3);
  $("hl-out").textContent = $("highlights").value;
  $("blades-out").textContent = $("blades").value;
  $("rot-out").textContent = `${$("rotation").value}°`;
  $("blade-controls").hidden = $("shape").value !== "blades";
}

function view() { return document.querySelector("input[name=view]:checked").value; }

// ------------------------------------------------------------------ preview

// On every edit (a slider moving, a click, a choice) ask for a fast half-size draft at once; 250 ms
// after the last change, ask for the full screen-size preview. Each request aborts the one before it.
function refresh(delay = 0, draft = false) {
  updateLabels();
  clearTimeout(state.timer);
  if (draft) {
    requestPreview(true);
    state.timer = setTimeout(() => requestPreview(false), 250);
  } else {
    state.timer = setTimeout(() => requestPreview(false), delay);
  }
}

function layout() {
  const s = state.session;
  if (!s) return;
  const main = $("main");
  const scale = Math.min(1, (main.clientWidth - 24) / s.preview_width, (main.clientHeight - 24) / s.preview_height);
  for (const img of [$("after")]) {
    img.style.width = `${Math.floor(s.preview_width * scale)}px`;
    img.style.height = `${Math.floor(s.preview_height * scale)}px`;
  }
}

async function requestPreview(draft = false) {
  const s = state.session;
  if (!s) return;
  if (state.controller) state.controller.abort();     // cancel the stale request
  const controller = new AbortController();
  state.controller = controller;
  const seq = ++state.seq;
  const params = new URLSearchParams(view() === "render" ? { ...settings(), draft: draft ? "on" : "off" } : { view: view() });
  $("stage").classList.add("busy");
  try {
    const response = await fetch(`/api/sessions/${s.id}/preview?${params}`, { signal: controller.signal });
    if (response.status === 204) return;               // superseded on the server
    if (!response.ok) { message(await errorText(response)); return; }
    const blob = await response.blob();
    if (seq !== state.seq) return;                     // a newer request was made meanwhile
    const url = URL.createObjectURL(blob);
    const img = $("after");
    await new Promise((resolve) => { img.onload = resolve; img.onerror = resolve; img.src = url; });
    if (state.afterUrl) URL.revokeObjectURL(state.afterUrl);
    state.afterUrl = url;
    state.shownSeq = seq;
    img.dataset.seq = String(seq);
    img.dataset.draft = draft ? "1" : "0";
    message("");
    const ms = response.headers.get("X-Render-Ms");
    describe(ms ? `${draft ? "draft" : "preview"} in ${ms} ms` : "");
  } catch (e) {
    if (e.name !== "AbortError") message(`Preview failed: ${e}`);
  } finally {
    if (seq === state.seq) $("stage").classList.remove("busy");
  }
}

// ------------------------------------------------------------------ focus

async function clickFocus(event) {
  const s = state.session;
  if (!s || event.target.id === "split") return;
  const rect = $("after").getBoundingClientRect();
  const x = (event.clientX - rect.left) / rect.width, y = (event.clientY - rect.top) / rect.height;
  if (x < 0 || x > 1 || y < 0 || y > 1) return;
  const mark = $("focus-mark");
  mark.style.left = `${x * 100}%`; mark.style.top = `${y * 100}%`; mark.hidden = false;
  const response = await fetch(`/api/sessions/${s.id}/focus`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ x, y }) });
  if (!response.ok) { message(await errorText(response)); return; }
  s.focus_disparity = (await response.json()).focus_disparity;
  refresh(0, true);
}

// ------------------------------------------------------------------ before / after

function updateCompare() {
  const on = $("compare").checked;
  $("before").hidden = !on; $("split").hidden = !on;
  $("before").style.clipPath = `inset(0 ${100 - $("split").value}% 0 0)`;
}

// ------------------------------------------------------------------ save

async function save() {
  const s = state.session;
  if (!s) return;
  const button = $("save"), bar = $("save-progress");
  button.disabled = true; bar.hidden = false; bar.value = 0; message("");
  try {
    const response = await fetch(`/api/sessions/${s.id}/save`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(settings()) });
    if (!response.ok) { message(await errorText(response)); return; }
    const { job } = await response.json();
    for (;;) {
      await new Promise((r) => setTimeout(r, 250));
      const poll = await fetch(`/api/sessions/${s.id}/jobs/${job}`);
      if (!poll.ok) { message(await errorText(poll)); return; }
      const st = await poll.json();
      bar.value = st.progress;
      button.textContent = `Saving… ${st.state} ${Math.round(st.progress * 100)}%`;
      if (st.state === "failed") { message(`Save failed: ${st.error}`); return; }
      if (st.state === "done") break;
    }
    const link = $("download");
    link.href = `/api/sessions/${s.id}/jobs/${job}/file`;
    link.download = "";
    link.textContent = "Download again";
    link.hidden = false;
    link.click();
    describe("saved at full resolution");
  } finally {
    button.disabled = false; button.textContent = "Save full resolution"; bar.hidden = true;
  }
}

// ------------------------------------------------------------------ wiring

$("file").addEventListener("change", (e) => upload(e.target.files[0]));
for (const id of ["blur", "focus-range", "highlights", "blades", "rotation"]) $(id).addEventListener("input", () => refresh(0, true));
for (const id of ["grain", "shape", "renderer"]) $(id).addEventListener("change", () => refresh(0, true));
for (const radio of document.querySelectorAll("input[name=view]")) radio.addEventListener("change", () => refresh(0));
$("stage").addEventListener("click", clickFocus);
$("compare").addEventListener("change", updateCompare);
$("split").addEventListener("input", updateCompare);
$("save").addEventListener("click", save);
document.addEventListener("dragover", (e) => { e.preventDefault(); document.body.classList.add("dragging"); });
document.addEventListener("dragleave", () => document.body.classList.remove("dragging"));
document.addEventListener("drop", (e) => {
  e.preventDefault(); document.body.classList.remove("dragging");
  if (e.dataTransfer.files.length) upload(e.dataTransfer.files[0]);
});
window.addEventListener("pagehide", () => {
  if (state.session) fetch(`/api/sessions/${state.session.id}`, { method: "DELETE", keepalive: true });
});
window.addEventListener("resize", layout);
updateLabels();
