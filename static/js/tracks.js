// Scheduling over time: each pCPU lane keeps a track of the recent past, a window of
// simulated time ending at the moment the diagram shows. The track is a pure function
// of the kept events (sched.switch, vcpu.run, vcpu.state, virq.deliver) up to that
// moment, so seeking back redraws it as it was and scrubbing costs nothing more.
// Segments are the vCPUs' running slices (coloured by VM and named where they fit);
// a vcpu_run or yield_to donation is the proxied vCPU running on its caller's slice,
// drawn hatched in the caller's colour (facts §7.1, proxy scheduling).
import { svg, setAttr, setText } from "./format.js";

export const WINDOWS_NS = [100e3, 200e3, 500e3, 1e6, 2e6, 5e6, 10e6, 20e6, 50e6, 100e6, 200e6];
export const DEFAULT_WINDOW = 5; // 5 ms: a few FPRR timeslices of the presets
const WATCH_S = 20; // the window holds about this many wall seconds of play at the speed

/** The window that holds about WATCH_S of play at `speed` (simulated s per wall s): at a
 *  preset's own speed the track fills as the class watches, neither a sliver at its
 *  right edge nor a blur. */
export function windowFor(speed) {
  const i = WINDOWS_NS.findIndex((ns) => ns >= speed * WATCH_S * 1e9);
  return i < 0 ? WINDOWS_NS.length - 1 : i;
}
const DONATING = new Set(["vcpu_run", "yield_to"]); // next runs on prev's slice
const RETURNING = new Set(["vcpu_run:return", "yield_to:return"]);
const BACK_SCAN_MAX = 200000; // events looked back for who ran when the window opens
const LABEL_FONT = 15;
const CHAR_W = 0.62 * LABEL_FONT; // a label's width is estimated, not measured, per frame
const LABEL_PAD = 10;
const MARK_MAX = 400; // marks drawn per track, the newest kept
const MARK_MIN_PX = 4; // a mark closer than this to the last one of its kind is not drawn
const SEG_MIN_PX = 1;
const KEPT = new Set(["sched.switch", "virq.deliver"]);
const THROTTLE = 4; // wait this many times the last derivation's cost before the next
const VM_COLOURS = 8; // app.css .vmc-0 … .vmc-7

/** A window's length, short: "500 µs", "5 ms". */
export function fmtSpan(ns) {
  return ns >= 1e6 ? `${ns / 1e6} ms` : `${ns / 1e3} µs`;
}

const vmOf = (vcpu) => (vcpu ? vcpu.split(".")[0] : null);
const markOf = (reason) => (reason === "preempt" ? "preempt" : reason?.startsWith("block:") ? "block"
  : reason?.startsWith("wake:") ? "wake" : null);

/** First index i in [lo, hi] with events[i].t >= t (events sorted by t), else hi + 1. */
function firstAt(events, lo, hi, t) {
  let a = lo, b = hi + 1;
  while (a < b) {
    const m = (a + b) >> 1;
    if (events[m].t < t) a = m + 1; else b = m;
  }
  return a;
}

/** Index of the last event with seq <= seq, or -1. */
function lastAtOrBefore(events, seq) {
  let a = 0, b = events.length;
  while (a < b) {
    const m = (a + b) >> 1;
    if (events[m].seq <= seq) a = m + 1; else b = m;
  }
  return a - 1;
}

/** Pure: the segments and marks of every pCPU in [t1 - span, t1], from events[0..end]
 *  (sorted by t; end is the view's index). initial: pCPU -> who ran before events[0].
 *  Returns [{segs: [{vcpu, vm, t0, t1, donor, reason}], marks: [{t, kind, vcpu, reason}]}]. */
export function trackSegments(events, end, t1, span, npcpu, initial = []) {
  const t0 = t1 - span;
  const lo = firstAt(events, 0, end, t0);
  // Nothing ran before simulated time 0: a window reaching back past it starts empty.
  const cur = Array.from({ length: npcpu }, (_, p) => ({ vcpu: initial[p] ?? null, donor: null, since: Math.max(t0, 0) }));
  const known = new Array(npcpu).fill(false);
  let left = npcpu;
  for (let i = lo - 1; i >= 0 && i >= lo - BACK_SCAN_MAX && left > 0; i--) {
    const e = events[i];
    if (e.kind !== "sched.switch" || known[e.pcpu] || e.pcpu >= npcpu) continue;
    known[e.pcpu] = true; left--;
    cur[e.pcpu].vcpu = e.next;
    cur[e.pcpu].donor = DONATING.has(e.reason) ? e.prev : null;
  }
  const out = Array.from({ length: npcpu }, () => ({ segs: [], marks: [] }));
  const close = (p, t) => {
    const c = cur[p];
    if (c.vcpu && t > c.since) out[p].segs.push({ vcpu: c.vcpu, vm: vmOf(c.vcpu), t0: c.since, t1: t, donor: c.donor });
  };
  const where = new Map(); // vcpu -> pCPU it last ran on (for the vIRQ ticks)
  for (let p = 0; p < npcpu; p++) if (cur[p].vcpu) where.set(cur[p].vcpu, p);
  for (let i = lo; i <= end; i++) {
    const e = events[i];
    if (e.kind === "sched.switch") {
      const p = e.pcpu;
      if (p >= npcpu) continue;
      close(p, e.t);
      const c = cur[p];
      const donor = DONATING.has(e.reason) ? e.prev
        : RETURNING.has(e.reason) || e.next !== c.vcpu ? null : c.donor;
      cur[p] = { vcpu: e.next, donor: e.next ? donor : null, since: e.t };
      if (e.next) where.set(e.next, p);
      const kind = markOf(e.reason);
      if (kind) out[p].marks.push({ t: e.t, kind, vcpu: kind === "wake" ? e.next : e.prev, reason: e.reason });
    } else if (e.kind === "virq.deliver" && e.vcpu != null) {
      const id = String(e.vcpu).includes(".") ? e.vcpu : `${e.vm}.${e.vcpu}`;
      const p = where.get(id);
      if (p != null) out[p].marks.push({ t: e.t, kind: "virq", vcpu: id, reason: `vIRQ ${e.virq}` });
    }
  }
  for (let p = 0; p < npcpu; p++) close(p, t1);
  return out;
}

/** Merge runs of segments narrower than minNs into one "several" segment; bound the count. */
export function mergeNarrow(segs, minNs) {
  const out = [];
  for (const s of segs) {
    const last = out[out.length - 1];
    const narrow = s.t1 - s.t0 < minNs;
    if (narrow && last && (last.merged || last.t1 - last.t0 < minNs) && s.t0 - last.t1 < minNs) {
      last.t1 = s.t1;
      if (last.vcpu !== s.vcpu) { last.merged = true; last.vcpu = null; last.donor = null; }
    } else out.push({ ...s });
  }
  return out;
}

/** Marks at least `minNs` after the last kept one of the same kind: at speed hundreds of
 *  wakes and vIRQs fall on the same few pixels, and one drawn mark shows them as well as
 *  a hundred overlapping ones (which cost a node each, every frame). */
export function thinMarks(marks, minNs) {
  const last = new Map();
  return marks.filter((m) => {
    const prev = last.get(m.kind);
    if (prev !== undefined && m.t - prev < minNs) return false;
    last.set(m.kind, m.t);
    return true;
  });
}

/** One path's "d" of rectangles [x, w] on a track row (one subpath each). */
function rects(list, y, h) {
  return list.map(([x, w]) => `M${x.toFixed(1)},${y}h${w.toFixed(1)}v${h}h${(-w).toFixed(1)}Z`).join("");
}

/** A mark's subpath at x on a track: preempt ▼ on top, wake ▲ below, block bar, vIRQ tick. */
function markPath(kind, mx, top, bot) {
  const x = mx.toFixed(1);
  if (kind === "preempt") return `M${(mx - 5).toFixed(1)},${top - 1}h10L${x},${top + 8}Z`;
  if (kind === "block") return `M${(mx - 1.5).toFixed(1)},${top}h3V${bot}h-3Z`;
  if (kind === "wake") return `M${x},${bot - 8}L${(mx + 5).toFixed(1)},${bot + 1}h-10Z`;
  return `M${x},${bot}v6`;
}

const MARK_KINDS = ["preempt", "block", "wake", "virq"];
const MARK_WORDS = { preempt: "preempted", block: "blocked", wake: "woke" };

/** The drawing: per lane, one path per segment colour and per mark kind (a few nodes
 *  whatever the number of slices: at speed, thousands of rects each rewritten every frame
 *  cost a style, layout and paint pass apiece), plus the few labels that fit. What each
 *  track shows is kept in `shown` (for tests and the hover title). */
export class Tracks {
  constructor() {
    this.windowIdx = DEFAULT_WINDOW;
    this.chosen = false; // the viewer picked the window (− / + / , .)
    this.lanes = [];
    this.key = "";
    this.vmIndex = new Map();
    this.onChange = () => {};
    this.lastAt = 0;
    this.lastCost = 0;
  }

  /** The class of the n-th VM's colour (the same in its box's key and its slices). */
  colourOf(n) { return `vmc-${n % VM_COLOURS}`; }

  get span() { return WINDOWS_NS[this.windowIdx]; }

  /** What each track drew last: its right edge, slices, labels and marks (with x). */
  get shown() { return this.lanes.map((lane) => lane.shown ?? null); }

  /** Widen (+1) or narrow (-1) the window; true when it changed. The viewer's choice
   *  then stays until the next scenario (`follow` no longer moves it). */
  zoom(dir) {
    this.chosen = true;
    return this.setWindow(this.windowIdx + dir);
  }

  /** Fit the window to a numeric speed (windowFor), unless the viewer chose one. */
  follow(speed) {
    if (!this.chosen && typeof speed === "number") this.setWindow(windowFor(speed));
  }

  setWindow(idx) {
    const i = Math.max(0, Math.min(WINDOWS_NS.length - 1, idx));
    if (i === this.windowIdx) return false;
    this.windowIdx = i;
    this.key = "";
    this.onChange();
    return true;
  }

  /** Build the empty tracks into the lanes (after diagram.buildLanes). */
  build(lanes, vmNames) {
    this.vmIndex = new Map(vmNames.map((n, i) => [n, i]));
    this.key = "";
    this.lanes = lanes.map((node) => {
      const tr = node.lane.track;
      const g = svg("g", { class: "track", "data-testid": `track-${node.lane.pcpu}` }, node.g);
      const title = svg("title", {}, g); // first child: the track's tooltip
      svg("rect", { x: tr.x, y: tr.y, width: tr.w, height: tr.h, class: "track-box" }, g);
      const lane = { tr, g, title, paths: new Map(), labels: [],
        segs: svg("g", { class: "track-segs" }, g), hatch: svg("g", { class: "track-hatch" }, g),
        marks: svg("g", { class: "track-marks" }, g), texts: svg("g", { class: "track-labels" }, g) };
      g.addEventListener("pointermove", (ev) => this.describe(lane, ev));
      return lane;
    });
  }

  /** Redraw when the view's seq or the window changed, at most every `minGapMs`. */
  update(events, end, t1, npcpu, initial, minGapMs = 0) {
    const kept = this.keep(events);
    const seq = end >= 0 ? events[end]?.seq : -1;
    const key = `${seq}|${t1}|${this.windowIdx}|${kept.length}`;
    if (key === this.key || !this.lanes.length) return;
    const wall = performance.now();
    // A long window at speed, or play at "max": fewer redraws.
    if (wall - this.lastAt < Math.max(this.lastCost * THROTTLE, minGapMs)) return;
    this.key = key;
    const span = this.span;
    const last = lastAtOrBefore(kept, seq);
    const data = trackSegments(kept, last, t1, span, npcpu, initial);
    this.lanes.forEach((lane, p) => this.draw(lane, data[p] ?? { segs: [], marks: [] }, t1, span));
    this.lastCost = performance.now() - wall;
    this.lastAt = wall;
  }

  /** The events the tracks read (switches, vIRQs), kept as they arrive; again from the
   *  start when the history was replaced or cut back (a fork, a branch loaded). */
  keep(events) {
    const n = this.scanned ?? 0;
    if (events !== this.from || n > events.length || (n > 0 && events[n - 1] !== this.lastSeen)) {
      this.from = events;
      this.kept = [];
      this.scanned = 0;
    }
    for (let i = this.scanned; i < events.length; i++) if (KEPT.has(events[i].kind)) this.kept.push(events[i]);
    this.scanned = events.length;
    this.lastSeen = events[events.length - 1];
    return this.kept;
  }

  /** The lane's path for one class (made on first use; emptied when not drawn). */
  path(lane, cls, parent, fill) {
    let node = lane.paths.get(cls);
    if (!node) {
      node = svg("path", { class: cls, ...(fill ? { fill } : {}) }, parent);
      lane.paths.set(cls, node);
    }
    return node;
  }

  draw(lane, data, t1, span) {
    const tr = lane.tr;
    const px = tr.w / span;
    const x = (t) => tr.x + Math.max(0, (t - (t1 - span))) * px;
    const segs = mergeNarrow(data.segs, SEG_MIN_PX / px);
    const byClass = new Map(), hatched = [], labels = [], shownSegs = [];
    for (const s of segs) {
      const x0 = x(s.t0), w = Math.max(SEG_MIN_PX, x(s.t1) - x0);
      const vmI = s.donor ? this.vmIndex.get(vmOf(s.donor)) : this.vmIndex.get(s.vm);
      const cls = s.merged ? "seg seg-many" : `seg ${this.colourOf(vmI ?? 0)}${s.donor ? " seg-donated" : ""}`;
      if (!byClass.has(cls)) byClass.set(cls, []);
      byClass.get(cls).push([x0, w]);
      if (s.donor) hatched.push([x0, w]); // the proxied vCPU on its caller's slice
      shownSegs.push({ vcpu: s.vcpu, donor: s.donor, merged: !!s.merged, t0: s.t0, t1: s.t1, x: x0, w });
      const owner = s.donor ? vmOf(s.donor) : null;
      const names = owner ? [`${s.vcpu} on ${owner}'s slice`, `${s.vcpu} ⇐ ${owner}`, s.vcpu] : [s.vcpu];
      const label = names.find((t) => t && t.length * CHAR_W + LABEL_PAD <= w);
      if (label) labels.push([label, x0 + 5]);
    }
    const y = tr.y + 2, h = tr.h - 4;
    for (const [cls, node] of lane.paths) {
      if (cls.startsWith("seg ") && !byClass.has(cls)) setAttr(node, "d", "");
    }
    for (const [cls, list] of byClass) setAttr(this.path(lane, cls, lane.segs), "d", rects(list, y, h));
    setAttr(this.path(lane, "seg-hatch", lane.hatch, "url(#pat-lent)"), "d", rects(hatched, y, h));
    this.drawLabels(lane, labels, tr.y + tr.h / 2 + 5);
    const marks = thinMarks(data.marks, MARK_MIN_PX / px).slice(-MARK_MAX);
    const top = tr.y, bot = tr.y + tr.h;
    const shownMarks = marks.map((m) => ({ ...m, x: x(m.t) }));
    for (const kind of MARK_KINDS) {
      const d = shownMarks.filter((m) => m.kind === kind).map((m) => markPath(kind, m.x, top, bot)).join("");
      setAttr(this.path(lane, `mark mark-${kind}`, lane.marks), "d", d);
    }
    setAttr(lane.g, "data-segments", String(segs.length));
    setAttr(lane.g, "data-marks", String(marks.length));
    setAttr(lane.g, "data-t1", String(t1));
    lane.shown = { t1, segs: shownSegs, labels: labels.map(([text]) => text), marks: shownMarks };
  }

  /** The labels that fit their slice: a pool of texts, the unused ones hidden. */
  drawLabels(lane, labels, y) {
    labels.forEach(([text, lx], i) => {
      let t = lane.labels[i];
      if (!t) { t = svg("text", { class: "seg-label" }, lane.texts); lane.labels.push(t); }
      setText(t, text);
      setAttr(t, "x", lx.toFixed(1));
      setAttr(t, "y", y);
      setAttr(t, "visibility", "visible");
    });
    for (let i = labels.length; i < lane.labels.length; i++) setAttr(lane.labels[i], "visibility", "hidden");
  }

  /** The hover title: who ran under the pointer (read from what was drawn, when asked). */
  describe(lane, ev) {
    const ctm = lane.g.getScreenCTM();
    const shown = lane.shown;
    if (!ctm || !shown) return;
    const { x } = new DOMPoint(ev.clientX, ev.clientY).matrixTransform(ctm.inverse());
    const s = shown.segs.find((seg) => x >= seg.x && x <= seg.x + seg.w);
    const m = shown.marks.find((mark) => Math.abs(mark.x - x) <= MARK_MIN_PX);
    const mark = !m ? "" : `${m.kind === "virq" ? m.reason : MARK_WORDS[m.kind]}: ${m.vcpu ?? "idle"} · `;
    setText(lane.title, mark + (!s ? "idle" : s.merged ? "several short slices" : s.donor
      ? `${s.vcpu} running on ${s.donor}'s slice (donated)` : `${s.vcpu} running`));
  }
}
