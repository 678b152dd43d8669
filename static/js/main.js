// Wiring: socket events -> state mirror -> diagram / animations / log / inspector,
// one requestAnimationFrame loop, the status line and the read-only test hooks.
import { connect, send, on } from "./socket.js";
import { SimState } from "./state.js";
import { Diagram } from "./diagram.js";
import { Animator } from "./animation.js";
import { Timeline } from "./timeline.js";
import { Inspector } from "./inspector.js";
import { Controls } from "./controls.js";
import { fmtTime, fmtSpeed } from "./format.js";

const STATUS_MS = 250;
const TOAST_MS = 6000;
const SNAPSHOT_DEDUP_MS = 1000;
const MAX_LATENCIES = 200;
const TRACE_WINDOW = 1; // sim:trace batches in flight while playing; acked once drawn

const $ = (id) => document.getElementById(id);
const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
const state = new SimState();
const diagram = new Diagram($("diagram"));
const anim = new Animator(diagram, reducedMotion);
const timeline = new Timeline({ list: $("log"), detail: $("log-detail"), filters: $("tl-filters"),
  vmSelect: $("tl-vm"), count: $("tl-count") });
const view = { seq: -1, now: 0, frames: 0, eventsPerS: 0, session: null, lastSnap: null };
const pendingClicks = new Map(); // action id -> click time, for click -> frame latency
const drawnActions = new Map();  // action id -> first frame time, when drawn before its ack
const latencies = [];

let toastTimer = null;
function toast(text) {
  const el = $("toast");
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, TOAST_MS);
}

async function act(action, args, ev) {
  const clickAt = ev?.timeStamp ?? performance.now();
  if (args.vm) anim.local({ kind: "pulse", key: `vm:${args.vm}` });
  const ack = await send("sim:action", { action, args });
  const id = ack.ok ? ack.action_id : null;
  if (id == null) return ack;
  if (drawnActions.has(id)) { // its trace event was drawn before the ack came back
    recordLatency(id, drawnActions.get(id) - clickAt);
    drawnActions.delete(id);
  } else pendingClicks.set(id, clickAt);
  return ack;
}
function recordLatency(action, ms) {
  latencies.push({ action, ms });
  if (latencies.length > MAX_LATENCIES) latencies.shift();
}
const inspector = new Inspector($("inspector"), state, act);

const controls = new Controls(send, {
  onSnapshot: applySnapshot,
  onPlaying: (p) => anim.setPlaying(p),
  onSpeed: (s) => anim.setSpeed(s),
  onEscape: () => { inspector.clear(); diagram.highlight([]); },
  toast,
});

function applySnapshot(snap) {
  const key = `${snap.scenario?.name}|${snap.scenario?.seed}|${snap.trace_seq}|${snap.now_ns}`;
  const wall = performance.now();
  if (view.lastSnap && view.lastSnap.key === key && wall - view.lastSnap.wall < SNAPSHOT_DEDUP_MS) return;
  view.lastSnap = { key, wall };
  state.reset(snap);
  diagram.build(snap);
  anim.reset(snap.now_ns);
  timeline.clear();
  timeline.setVms(snap.vms.map((v) => v.name));
  view.seq = -1;
  view.now = snap.now_ns;
  $("scenario-title").textContent = snap.scenario?.title ?? snap.scenario?.name ?? "";
  if (snap.scenario?.name) controls.setScenario(snap.scenario.name);
  const sel = inspector.sel;
  if (sel) inspector.show(sel); else inspector.clear();
}

async function resync() {
  const ack = await send("sim:snapshot", {});
  if (ack.ok) { view.lastSnap = null; applySnapshot(ack.snapshot); }
}

const batchAcks = [];
on("sim:trace", (batch, ack) => {
  if (ack) batchAcks.push(ack);
  if (!state.snap) return;
  if (view.seq >= 0 && batch.first_seq > view.seq + 1) { resync(); return; }
  const events = batch.events.filter((e) => e.seq > view.seq);
  for (const e of events) state.apply(e);
  anim.serverNow(batch.now_ns);
  anim.add(events);
  timeline.push(events);
  if (events.length) view.seq = events[events.length - 1].seq;
  view.now = batch.now_ns;
});
function applyStatus(s) {
  controls.setPlaying(Boolean(s.playing));
  if (s.speed != null && s.speed !== controls.speed) controls.showSpeed(s.speed);
  view.eventsPerS = s.events_per_s ?? 0;
  if (s.now_ns != null) { view.now = Math.max(view.now, s.now_ns); anim.serverNow(s.now_ns); }
}
on("sim:status", applyStatus);
on("sim:snapshot", (snap) => applySnapshot(snap));
on("server:error", (err) => toast(`${err.code}: ${err.message}`));
on("disconnect", () => { $("st-conn").textContent = "offline"; $("st-conn").className = "st-item st-conn off"; });
on("connect", hello);

async function hello() {
  $("st-conn").textContent = "connected";
  $("st-conn").className = "st-item st-conn on";
  const ack = await send("sim:hello", { window: TRACE_WINDOW });
  if (!ack.ok) { toast(`${ack.error.code}: ${ack.error.message}`); return; }
  view.session = ack.session;
  controls.setSession(ack.session);
  controls.setPresets(ack.presets ?? []);
  const wanted = new URLSearchParams(location.search).get("scenario");
  if (wanted) await controls.call("sim:load", { scenario: wanted });
  else if (ack.snapshot) applySnapshot(ack.snapshot);
  else await resync();
  if (ack.status) applyStatus(ack.status);
}

diagram.onSelect = (sel) => inspector.show(sel);
timeline.onSelect = (e, keys) => diagram.highlight(keys);
anim.onFirstDraw = (tw, wall) => {
  if (tw.action == null) return;
  const clickAt = pendingClicks.get(tw.action);
  if (clickAt === undefined) { drawnActions.set(tw.action, wall); return; }
  pendingClicks.delete(tw.action);
  recordLatency(tw.action, wall - clickAt);
};

let lastStatus = 0;
function updateStatus(wall) {
  if (controls.playing && wall - lastStatus < STATUS_MS) return; // paused: show steps at once
  lastStatus = wall;
  $("st-time").textContent = fmtTime(view.now);
  $("st-rate").textContent = Math.round(view.eventsPerS).toLocaleString("en");
  $("st-speed").textContent = fmtSpeed(controls.speed);
  $("st-coalesced").textContent = anim.coalesced.toLocaleString("en");
  $("coalesce-flag").hidden = !anim.coalescing;
  $("st-coalesce-box").classList.toggle("active", anim.coalescing);
}

function frame(wall) {
  timeline.flush(wall);
  diagram.update(state);
  anim.frame(wall);
  inspector.refresh(wall);
  updateStatus(wall);
  view.frames++;
  while (batchAcks.length) batchAcks.shift()();
  requestAnimationFrame(frame);
}

Object.defineProperty(window, "__gunyah", {
  value: Object.freeze({
    get seq() { return view.seq; },
    get now_ns() { return view.now; },
    get framesDrawn() { return view.frames; },
    get lastAnimStart() { return anim.lastAnimStart; },
    get lastAnim() { return anim.lastAnim ? { ...anim.lastAnim } : null; },
    get coalesced() { return anim.coalesced; },
    get playing() { return controls.playing; },
    get session() { return view.session; },
    get clickLatencies() { return latencies.map((l) => ({ ...l })); },
    get shownSeqs() { return timeline.shownSeqs(); },
  }),
  writable: false,
  configurable: false,
});

requestAnimationFrame(frame);
connect();
