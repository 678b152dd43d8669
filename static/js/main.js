// Wiring: socket events -> state mirror -> diagram / animations / log / inspector,
// one requestAnimationFrame loop, the status line and the read-only test hooks.
import { connect, send, on, keepSession } from "./socket.js";
import { SimState } from "./state.js";
import { Diagram } from "./diagram.js";
import { Animator } from "./animation.js";
import { Timeline } from "./timeline.js";
import { Inspector } from "./inspector.js";
import { CaptionBar, attachCaptions, bareEvent } from "./caption.js";
import { Controls } from "./controls.js";
import { fmtTime, fmtSpeed } from "./format.js";
import { PacketIndex, loadNames } from "./rmpacket.js";
import { History } from "./history.js";
import { HistoryBar } from "./histbar.js";
import { Share } from "./share.js";
import { LessonPlayer } from "./lesson.js";
import { HvcConsole } from "./console.js";
import { FaultsMenu } from "./faults.js";
import { InvariantsPanel } from "./invariants.js";
import { StageView } from "./stageview.js";
import { OfflineBanner } from "./offline.js";

const STATUS_MS = 250;
const TOAST_MS = 6000;
const MAX_LATENCIES = 200;
const TRACE_WINDOW = 1; // sim:trace batches in flight while playing; acked once drawn
const FRAME_LATE_MS = 1000 / 60 + 1.5; // a frame later than this after the last is late
const MAX_HELD_FRAMES = 1;             // a late frame holds the acks this many frames at most
// At "max" the tracks' window slides by much of its width each frame: redrawn at 30 Hz
// they read the same, for half the drawing (and the frames stay smooth).
const MAX_SPEED_TRACK_MS = 1000 / 30 - 2;

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
const offline = new OfflineBanner();

let toastTimer = null;
/** Show `text`, or a heading and one line per item (e.g. every mistake of an upload). */
function toast(text, items = []) {
  const el = $("toast");
  el.textContent = text;
  for (const item of items) {
    const line = document.createElement("div");
    line.className = "toast-item";
    line.dataset.testid = "toast-item";
    line.textContent = item;
    el.append(line);
  }
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, TOAST_MS * (1 + items.length / 2));
}

async function act(action, args, ev) {
  const clickAt = ev?.timeStamp ?? performance.now();
  if (args.vm) anim.local({ kind: "pulse", key: `vm:${args.vm}` });
  const ack = await send("sim:action", { action, args, ...bar.actionArgs() }); // in the past: a fork
  bar.afterAction(ack);
  if (ack.ok) share.refreshRun(); // the URL carries the new action
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
const packets = new PacketIndex(); // RM packets seen on the RM link queues, for the decoder
loadNames();
async function fetchDts(name) { // the DT overlay is in server snapshots only, not in trace events
  const ack = await send("sim:snapshot", {});
  const dts = ack.ok ? ack.snapshot.vms.find((v) => v.name === name)?.dts : null;
  const vm = state.vms.get(name);
  if (vm && dts) vm.dts = dts;
  return dts;
}
const inspector = new Inspector($("inspector"), state, act, { packets, fetchDts });
const hvcConsole = new HvcConsole(state, act);
inspector.openConsole = (name) => hvcConsole.open(name);
const faults = new FaultsMenu(state, act, $("btn-faults"));
const captionBar = new CaptionBar($("caption-bar"), (e) => timeline.explain(e));
diagram.motion = !reducedMotion;
let builtStructure = -1; // state.structure the diagram was last built for

/** Draw the diagram again from the current state: new width, a VM hidden, an RM link unfolded. */
function relayout() {
  if (!state.snap) return;
  diagram.build(state.structureSnap());
  state.dirty.add("all");
  diagram.update(state); // no frame shows the new nodes empty
  stage.setVms([...state.vms.keys()]);
}
const stage = new StageView(diagram, relayout);
/** "," and "." narrow and widen the pCPU tracks' window of time. */
function trackKey(ev) {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return false;
  if (ev.key === ",") return diagram.tracks.zoom(-1) || true;
  if (ev.key === ".") return diagram.tracks.zoom(1) || true;
  return false;
}
diagram.onRelayout = relayout;
document.addEventListener("keydown", (ev) => {
  if (lesson.key(ev)) { ev.preventDefault(); return; } // n, b, PageDown/PageUp, 1-9
  if (ev.target.closest("input, select, textarea")) return;
  if (stage.key(ev) || diagram.view.key(ev) || trackKey(ev)) ev.preventDefault();
});

/** Rebuild the diagram when VMs, vCPUs, queues or doorbells came or went (not per event). */
function syncStructure() {
  if (state.structure === builtStructure || !state.snap) return;
  builtStructure = state.structure;
  const snap = state.structureSnap();
  diagram.build(snap);
  state.dirty.add("all");
  diagram.update(state); // no frame shows the new nodes empty
  const names = snap.vms.map((v) => v.name);
  stage.setVms(names);
  if (names.join() !== timeline.vmNames?.join()) {
    const keep = timeline.vm;
    timeline.setVms(names);
    timeline.vmNames = names;
    if (names.includes(keep)) { timeline.vm = keep; $("tl-vm").value = keep; }
  }
  if (inspector.sel?.type !== "packet") inspector.refresh(Infinity);
}

const controls = new Controls(send, {
  onSnapshot: applySnapshot,
  onPlaying: (p) => anim.setPlaying(p),
  onSpeed: (s) => { anim.setSpeed(s); diagram.tracks.follow(s); },
  onEscape: () => { inspector.clear(); diagram.highlight([]); },
  toast,
});
const history = new History({ state, diagram, anim, timeline, send });
history.onMoved = syncStructure; // a seek may cross VMs or queues being created or destroyed
const bar = new HistoryBar(history, controls, send, toast);
const invariants = new InvariantsPanel($("status"), $("st-conn"), (seq) => bar.seek(seq));
const share = new Share({ send, history, controls, toast, session: () => view.session,
  key: () => view.key });
const lesson = new LessonPlayer($("lesson"), $("btn-lessons"), { call: (t, p) => controls.call(t, p),
  act: (a, args) => act(a, args), highlight: (keys) => diagram.highlight(keys), toast,
  // The player is in the side panel; in presentation mode, under the diagram (placeLesson).
  showPanel: () => { if (!stage.presenting) stage.setPanels(true); placeLesson(); },
  placed: () => placeLesson(), leavePresentation: () => stage.present(false),
  history, seek: (seq) => bar.seek(seq), forked: (ack) => bar.afterAction(ack),
  chooseBranch: (id) => bar.choose(id), labelBranch: (id, text) => bar.label(id, text) });
/** The lesson player's place: the side panel, or in presentation mode the stage, beside
 *  the diagram on a wide window or under it (CSS; the diagram re-lays out for what is left). */
function placeLesson() {
  const root = $("lesson");
  const on = !root.hidden;
  if (stage.presenting && on) {
    if (root.parentElement !== $("present-caption").parentElement) $("present-caption").before(root);
  } else if (root.nextElementSibling !== $("inspector")) $("inspector").before(root);
  document.body.classList.toggle("lesson-on", on);
}
stage.onPresent = (on) => { // leaving: the player goes back to the side panel, opened
  if (!on && !$("lesson").hidden) stage.setPanels(true);
  placeLesson();
};
$("present-lessons").addEventListener("click", () => lesson.open());
share.lessonLink = () => lesson.link; // the address bar follows the lesson's step
bar.onChosen = () => lesson.branchLoaded();

function applySnapshot(snap) {
  // A load or reset's snapshot comes twice (its event and its ack): draw it once. `build`
  // tells a reset, which shows the same machine at the same seq, from that echo.
  const key = `${snap.build}|${snap.scenario?.name}|${snap.scenario?.seed}|${snap.trace_seq}|${snap.now_ns}`;
  if (view.lastSnap === key) return;
  view.lastSnap = key;
  state.reset(snap);
  diagram.tracks.chosen = false; // a new run's tracks fit its speed again
  diagram.tracks.follow(controls.speed); // the status after it brings a new speed, if any
  diagram.setFocus(snap.scenario?.focus);
  diagram.build(snap);
  stage.setVms(snap.vms.map((v) => v.name));
  builtStructure = state.structure;
  packets.clear();
  anim.reset(snap.now_ns);
  timeline.clear();
  timeline.setBoot(snap.boot_seq); // its events follow in a sim:trace batch, folded in the log
  history.reset();
  hvcConsole.reset();
  faults.reset();
  share.snapshot(snap);
  timeline.setVms(snap.vms.map((v) => v.name));
  timeline.vmNames = snap.vms.map((v) => v.name);
  view.seq = -1;
  view.now = snap.now_ns;
  $("scenario-title").textContent = snap.scenario?.title ?? snap.scenario?.name ?? "";
  $("scenario-title").title = $("scenario-title").textContent; // whole, when the header cuts it
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
  attachCaptions(batch.events, batch.captions);
  if (history.head >= 0 && batch.first_seq > history.head + 1) { resync(); return; }
  const events = batch.events.filter((e) => e.seq > history.head);
  const live = history.ingest(events); // applied to the view only when it is at the head
  for (const e of events) packets.record(e);
  syncStructure(); // before the animations, so messages on a new queue find its link
  anim.serverNow(batch.now_ns);
  if (live) anim.add(events.filter((e) => e.seq > timeline.bootSeq)); // the boot is summarised, not played
  timeline.push(events);
  inspector.outcome(events); // a queued action that ran says how it went

  hvcConsole.ingest(events);
  faults.ingest(events);
  view.seq = history.view;
  if (live) view.now = batch.now_ns;
});
function applyStatus(s) {
  controls.setPlaying(Boolean(s.playing));
  if (s.speed != null && s.speed !== controls.speed) controls.showSpeed(s.speed);
  view.eventsPerS = s.events_per_s ?? 0;
  bar.status(s);
  share.status(s);
  lesson.status();
  if ("invariants" in s) invariants.update(s.invariants);
  if (s.now_ns != null) { view.now = Math.max(view.now, s.now_ns); anim.serverNow(s.now_ns); }
}
on("sim:status", applyStatus);
on("sim:snapshot", (snap) => applySnapshot(snap));
on("server:error", (err) => toast(`${err.code}: ${err.message}`));
on("disconnect", () => { $("st-conn").textContent = "offline"; $("st-conn").className = "st-item st-conn off"; });
on("disconnect", () => offline.down());
on("reconnect_attempt", (n) => offline.down(n));
on("connect", () => offline.up());
on("connect", hello);
on("connect_error", (err) => { // a refusal, e.g. a limit; "not answering" is the banner's
  if (!(offline.offline && err.code === "OFFLINE")) toast(`${err.code}: ${err.message}`);
});

// Where the view was (scrubbed into the past), for a reload of this tab to come back to.
const VIEW_ITEM = "gunyah.view-seq";
window.addEventListener("pagehide", () => {
  try {
    if (history.live) sessionStorage.removeItem(VIEW_ITEM);
    else sessionStorage.setItem(VIEW_ITEM, String(history.view));
  } catch { /* storage blocked: a reload shows the head */ }
});
function savedView() {
  try { const v = sessionStorage.getItem(VIEW_ITEM); return v == null ? null : Number(v); }
  catch { return null; }
}

let firstHello = true;
function navigationType() {
  return performance.getEntriesByType("navigation")[0]?.type ?? "navigate";
}

async function hello() {
  $("st-conn").textContent = "connected";
  $("st-conn").className = "st-item st-conn on";
  // A resumed session's missed events (and, after a reload, its boot snapshot) arrive
  // before this ack, in order, through the sim:snapshot / sim:trace listeners.
  const ack = await send("sim:hello", { window: TRACE_WINDOW });
  if (!ack.ok) { toast(`${ack.error.code}: ${ack.error.message}`); return; }
  view.session = ack.session;
  view.key = ack.resume?.key ?? null; // the session's write key (imports) and resume key
  keepSession(view.key);
  controls.setSession(ack.session);
  hvcConsole.setTable(ack.hypercalls);
  controls.setPresets(ack.presets ?? []);
  share.setPresets(ack.presets ?? []);
  if (state.snap?.scenario?.name) controls.setScenario(state.snap.scenario.name); // drawn before this ack
  if (ack.status) applyStatus(ack.status); // before a load, whose own status is newer
  const params = new URLSearchParams(location.search);
  const wanted = params.get("scenario");
  const newLink = firstHello && wanted && navigationType() === "navigate";
  const lessonLink = firstHello && params.has("lesson");
  firstHello = false;
  if (lessonLink) { await lesson.openLink(params); return; } // ?lesson=NAME&step=K
  // Resumed: the run is back as it was, unless this tab was just sent to a new link.
  if (ack.resume?.resumed && !newLink) {
    const pos = savedView();
    if (pos != null && pos >= history.start && pos < history.head) bar.seek(pos);
    return;
  }
  if (ack.resume?.error) toast("the previous session had expired: this is a new one");
  if (wanted && (params.has("actions") || params.has("head"))) await share.loadFromUrl(params);
  else if (wanted) await controls.call("sim:load", { scenario: wanted });
  else if (ack.boot) { /* a new session: its built machine and boot came before this ack */ }
  else if (ack.snapshot) applySnapshot(ack.snapshot);
  else await resync();
}

diagram.onSelect = (sel) => inspector.show(sel);
timeline.explain = async (e) => { // the event inspector's words come from captions.py too
  const ack = await send("sim:explain", { event: bareEvent(e) });
  return ack.ok ? ack : null;
};
timeline.onSelect = (e, keys) => diagram.highlight(keys); // explain and outline; the view stays
timeline.onGoto = (e) => bar.seek(e.seq); // move the diagram there only when asked
const selectEvent = timeline.onSelect;
timeline.onSelect = (e, keys) => { selectEvent(e, keys); inspector.showPacketOf(e); }; // RM packets decode
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
  $("st-time").textContent = fmtTime(history.live ? view.now : state.now);
  $("st-rate").textContent = Math.round(view.eventsPerS).toLocaleString("en");
  $("st-speed").textContent = fmtSpeed(controls.speed);
  $("st-coalesced").textContent = anim.coalesced.toLocaleString("en");
  $("coalesce-flag").hidden = !anim.coalescing;
  $("st-coalesce-box").classList.toggle("active", anim.coalescing);
}

/** Ack the drawn trace batches, which lets the server send the next (TRACE_WINDOW). A
 *  frame that came late says the page is drawing more than a frame holds: the acks wait
 *  one frame more, so at "max" the stream slows to what the page can draw smoothly
 *  rather than the frames slowing to the stream. */
let lastFrameAt = null, heldFrames = 0;
function releaseAcks(wall) {
  const late = lastFrameAt != null && wall - lastFrameAt > FRAME_LATE_MS;
  lastFrameAt = wall;
  if (late && heldFrames < MAX_HELD_FRAMES && batchAcks.length) { heldFrames++; return; }
  heldFrames = 0;
  while (batchAcks.length) batchAcks.shift()();
}

function frame(wall) {
  timeline.flush(wall);
  captionBar.show(history.view >= 0 ? history.at(history.view) : null, controls.playing);
  syncStructure();
  diagram.update(state);
  diagram.tracks.update(history.events, history.view - history.base, state.now, state.pcpus.length,
    history.keyframes[0].st.pcpus.map((p) => p.current),
    controls.playing && controls.speed === "max" ? MAX_SPEED_TRACK_MS : 0);
  anim.frame(wall);
  inspector.refresh(wall);
  updateStatus(wall);
  bar.frame(wall);
  stage.frame(history.view, (seq) => history.at(seq));
  view.frames++;
  releaseAcks(wall);
  requestAnimationFrame(frame);
}

Object.defineProperty(window, "__gunyah", {
  value: Object.freeze({
    get seq() { return history.view; },
    get now_ns() { return history.live ? view.now : state.now; },
    get viewSeq() { return history.view; },
    get bootSeq() { return timeline.bootSeq; },
    get viewKind() { return history.at(history.view)?.kind ?? null; },
    get headSeq() { return history.head; },
    get live() { return history.live; },
    get branch() { return history.branch; },
    get keyframes() { return history.keyframes.length; },
    get replayOnly() { return share.replayOnly; },
    get framesDrawn() { return view.frames; },
    get memory() {
      return Object.fromEntries([...state.memory].map(([vm, list]) => [vm,
        list.map(({ base, size, pa, rights, state: st, handle }) => ({ base, size, pa, rights, state: st, handle }))]));
    },
    get vmStates() { return Object.fromEntries([...state.vms.values()].map((v) => [v.name, v.state])); },
    get lastAnimStart() { return anim.lastAnimStart; },
    get lastAnim() { return anim.lastAnim ? { ...anim.lastAnim } : null; },
    get coalesced() { return anim.coalesced; },
    get playing() { return controls.playing; },
    get session() { return view.session; },
    get clickLatencies() { return latencies.map((l) => ({ ...l })); },
    get shownSeqs() { return timeline.shownSeqs(); },
    get zoom() { return diagram.view.k; },
    get presenting() { return stage.presenting; },
    get lesson() { return lesson.state; },
    /** The stored events with seq in [from, to]: their seq and kind. */
    eventKinds: (from, to) => history.events.filter((e) => e.seq >= from && e.seq <= to)
      .map((e) => [e.seq, e.kind]),
    get trackWindowNs() { return diagram.tracks.span; },
    get trackKept() { return diagram.tracks.kept?.map((e) => e.seq) ?? []; },
    /** What each pCPU track drew: its right edge, slices, labels and marks (with x). */
    get tracks() { return diagram.tracks.shown; },
    get keptSeqs() { return history.events.filter((e) => e.kind === "sched.switch" || e.kind === "virq.deliver")
      .map((e) => e.seq); },
    get schedSwitches() {
      const end = history.view - history.base;
      return history.events.slice(0, Math.max(0, end + 1)).filter((e) => e.kind === "sched.switch")
        .map(({ seq, t, pcpu, prev, next, reason }) => ({ seq, t, pcpu, prev, next, reason }));
    },
  }),
  writable: false,
  configurable: false,
});

requestAnimationFrame(frame);
connect(() => history.head); // a resume continues after the last event the page applied
