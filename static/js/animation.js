// Tweens for trace events. A tween's position is a pure function of the view clock `t`
// (simulated ns): pause freezes `t`, so nothing drifts; a step plays its animation by
// letting `t` run on to the tween's end. When events come faster than they can be
// drawn, new tweens are merged or dropped and counted in `coalesced` (shown on screen).
import { svg } from "./format.js";

const ANIM_MS = 650;          // wall time one animation lasts, whatever the speed
const LEAD_MS = 120;          // the clock may run this far ahead of the server's last time
const LAG_MS = 400;           // ...and is pulled forward when it lags further behind
const MAX_FRAME_DT_MS = 100;  // a hidden tab must not jump the clock
const MAX_TWEENS = 160;
const MAX_DOTS = 24;
const MAX_NEW_PER_BATCH = 32;
const COALESCE_SHOW_MS = 1500;
const CHAIN_FRACTION = 0.35;   // a queued flash/ghost on the same node starts this far into the last
const COALESCE_BANNER_MIN = 8; // a couple of same-instant updates merged is not "too fast"
const NS_PER_MS_PER_SPEED = 1e6; // speed 1 s/s = 1e6 simulated ns per wall ms
const FALLBACK_RATE = 1000;    // ns per ms until a "max" run has been measured
const RATE_SMOOTHING = 0.3;
const DOT_R = 11;
const PATH_SAMPLES = 64;
const FADE_STEPS = 10;
const WEAK_FLASH = 0.6; // virq.deliver flashes fainter than virq.assert
const ANIMATED_KINDS = new Set(["msgq.send", "msgq.recv", "bell.send", "virq.assert", "virq.deliver",
  "sched.switch", "hvc", "user.action"]);

/** Set an attribute only when its value changes: each write repaints part of the SVG. */
function put(el, name, value) {
  const key = `__a_${name}`;
  if (el[key] !== value) { el.setAttribute(name, value); el[key] = value; }
}

/** Opacity in a few steps, so a fade repaints ~10 times instead of every frame. */
function fade(x) { return Math.round(Math.max(0, x) * FADE_STEPS) / FADE_STEPS; }

/** Point at fraction f of a link, from a table sampled once (getPointAtLength is slow). */
function pointOn(link, f) {
  if (!link.samples) {
    const len = link.path.getTotalLength();
    link.samples = Array.from({ length: PATH_SAMPLES + 1 }, (_, i) => {
      const pt = link.path.getPointAtLength(len * i / PATH_SAMPLES);
      return { x: pt.x, y: pt.y };
    });
  }
  const at = Math.max(0, Math.min(1, f)) * PATH_SAMPLES;
  const i = Math.min(PATH_SAMPLES - 1, Math.floor(at));
  const a = link.samples[i], b = link.samples[i + 1], k = at - i;
  return { x: a.x + (b.x - a.x) * k, y: a.y + (b.y - a.y) * k };
}

export class Animator {
  constructor(diagram, reducedMotion = false) {
    this.diagram = diagram;
    this.reducedMotion = reducedMotion;
    this.rate = FALLBACK_RATE;
    this.maxSpeed = false;
    this.measured = null;
    this.playing = false;
    this.coalesced = 0;
    this.lastCoalesceWall = -Infinity;
    this.lastAnimStart = null;
    this.lastAnim = null;
    this.onFirstDraw = () => {};
    this.reset(0);
  }

  /** Drop all tweens and rebuild the effect nodes (after the diagram was rebuilt). */
  reset(now) {
    this.t = now;
    this.anchor = { now, wall: performance.now() };
    this.lastWall = null;
    this.tweens = [];
    this.coalesced = 0;
    const fx = this.diagram.fx;
    if (!fx) return;
    fx.replaceChildren();
    this.dots = Array.from({ length: MAX_DOTS }, () => svg("circle",
      { r: DOT_R, class: "msg-dot", visibility: "hidden" }, fx));
    this.ghosts = (this.diagram.lanes ?? []).map(() => {
      const g = svg("g", { class: "ghost", visibility: "hidden" }, fx);
      return { g, rect: svg("rect", { rx: 7, class: "chip st-running" }, g),
        label: svg("text", { class: "lane-cur", "text-anchor": "middle" }, g) };
    });
  }

  setSpeed(speed) {
    this.maxSpeed = speed === "max";
    if (!this.maxSpeed && typeof speed === "number") this.rate = speed * NS_PER_MS_PER_SPEED;
  }

  setPlaying(playing) { this.playing = playing; }

  get effectiveRate() {
    return this.maxSpeed ? (this.measured ?? FALLBACK_RATE) : this.rate;
  }

  /** The server's simulated time at a wall instant (from trace batches and status). */
  serverNow(nowNs, wall = performance.now()) {
    const dWall = wall - this.anchor.wall;
    const dNow = nowNs - this.anchor.now;
    if (this.playing && dWall > 1 && dNow > 0) {
      const r = dNow / dWall;
      this.measured = this.measured == null ? r : this.measured + RATE_SMOOTHING * (r - this.measured);
    }
    this.anchor = { now: nowNs, wall };
  }

  coalesce(n, wall) {
    if (n <= 0) return;
    this.coalesced += n;
    if (wall - this.lastCoalesceWall > COALESCE_SHOW_MS) this.recentCoalesced = 0;
    this.recentCoalesced = (this.recentCoalesced ?? 0) + n;
    this.lastCoalesceWall = wall;
  }

  get coalescing() {
    return performance.now() - this.lastCoalesceWall < COALESCE_SHOW_MS &&
      this.recentCoalesced >= COALESCE_BANNER_MIN;
  }

  /** Turn a batch of trace events into tweens. */
  add(events, wall = performance.now()) {
    const from = Math.max(0, events.length - MAX_NEW_PER_BATCH);
    // Paused, a step's animations play at once, wherever in simulated time it landed.
    if (!this.playing && events.length) this.t = Math.max(this.t, events[events.length - 1].t);
    let dropped = 0;
    for (let i = 0; i < events.length; i++) {
      const e = events[i];
      // What a person did, and hypercall errors, are never coalesced away.
      const vital = e.kind === "user.action" || (e.kind === "hvc" && e.result !== "OK");
      if (i < from && !vital) {
        if (ANIMATED_KINDS.has(e.kind)) dropped++;
        continue;
      }
      const spec = this.specFor(e);
      if (spec && !this.start(spec, e)) dropped++;
    }
    this.coalesce(dropped, wall);
  }

  /** A locally started effect (e.g. a click's immediate feedback). */
  local(spec) { this.start(spec, { t: this.t, seq: null, kind: spec.kind }); }

  specFor(e) {
    switch (e.kind) {
      case "msgq.send": return { kind: "dot", key: `msgq:${e.msgq}:tx`, label: e.msg };
      case "msgq.recv": return { kind: "dot", key: `msgq:${e.msgq}:rx`, reverse: true, label: e.msg };
      case "bell.send": return { kind: "dot", key: `bell:${e.doorbell}:tx`, label: e.doorbell };
      case "virtio.write": return e.reg === "QueueNotify" ? { kind: "dot", key: `virtio:${e.device}:tx`, label: `q${e.value}` } : null;
      case "virtq.used": return { kind: "dot", key: `virtio:${e.device}:tx`, reverse: true, label: `q${e.queue}` };
      case "virq.assert": case "virq.deliver": {
        const [type, name, role] = String(e.source).split(":");
        // A virtio device's line to its backend runs down the backend's link (rx side).
        const key = type === "doorbell" ? `bell:${name}:rx`
          : type === "virtio_mmio" ? `virtio:${name}:${role === "backend" ? "rx" : "tx"}` : `${type}:${name}:${role}`;
        return { kind: "flash", key, strong: e.kind === "virq.assert" };
      }
      case "sched.switch": return e.next ? { kind: "ghost", key: `lane:${e.pcpu}`, vcpu: e.next, pcpu: e.pcpu } : null;
      case "hvc": return e.result !== "OK" ? { kind: "pulse", key: `vm:${e.vm}`, error: true } : null;
      case "user.action": return e.args?.vm ? { kind: "pulse", key: `vm:${e.args.vm}`, action: e.id } : null;
      default: return null;
    }
  }

  start(spec, e) {
    if (this.reducedMotion && (spec.kind === "dot" || spec.kind === "ghost")) return true;
    const node = this.nodeFor(spec);
    if (!node) return true; // nothing drawn for it in this scenario
    const dur = ANIM_MS * this.effectiveRate;
    let t0 = Math.max(e.t, this.t);
    if (spec.kind !== "dot") {
      const busy = this.tweens.findLast((tw) => tw.key === spec.key && tw.kind === spec.kind);
      if (busy?.drawn) { // already seen: the new event takes its place from now on
        Object.assign(busy, spec, { node, t0, dur, seq: e.seq, evKind: e.kind, drawn: false });
        return true;
      }
      // Not on screen yet (e.g. a vIRQ's assert, then its deliver 2 us later, both in one
      // batch): queue this one behind it rather than replacing it, so both are seen.
      if (busy) t0 = Math.max(t0, busy.t0 + busy.dur * CHAIN_FRACTION);
    }
    if (this.tweens.length >= MAX_TWEENS) return false;
    let el = null;
    if (spec.kind === "dot") {
      el = this.dots.find((d) => !d.__busy);
      if (!el) return false;
      el.__busy = true;
      el.setAttribute("data-msg", spec.label);
    }
    this.tweens.push({ ...spec, spec, node, el, t0, dur, seq: e.seq, evKind: e.kind, drawn: false });
    return true;
  }

  nodeFor(spec) {
    if (spec.kind === "dot" || spec.kind === "flash") return this.diagram.links.get(spec.key) ?? null;
    if (spec.kind === "pulse") return this.diagram.vms.get(spec.key.slice(3)) ?? null;
    if (spec.kind === "ghost") {
      const from = this.diagram.chipBox(spec.vcpu);
      const ghost = this.ghosts?.[spec.pcpu];
      return from && ghost ? { from, to: this.diagram.lanes[spec.pcpu].lane.chip, ghost } : null;
    }
    return null;
  }

  /** Advance the clock to this frame and draw every live tween. */
  frame(wall) {
    const dt = this.lastWall == null ? 0 : Math.min(wall - this.lastWall, MAX_FRAME_DT_MS);
    this.lastWall = wall;
    const rate = this.effectiveRate;
    if (this.playing) {
      const ahead = Math.min(this.anchor.now + rate * (wall - this.anchor.wall), this.anchor.now + rate * LEAD_MS);
      this.t = Math.max(this.t, Math.min(this.t + rate * dt, ahead), this.anchor.now - rate * LAG_MS);
    } else {
      const hold = this.tweens.reduce((m, tw) => Math.max(m, tw.t0 + tw.dur), this.t);
      this.t = Math.min(this.t + rate * dt, hold);
    }
    const keep = [];
    for (const tw of this.tweens) {
      const p = tw.dur > 0 ? (this.t - tw.t0) / tw.dur : 1;
      if (p >= 1) { this.finish(tw); continue; }
      keep.push(tw);
      if (p < 0) continue;
      this.draw(tw, p);
      if (!tw.drawn) {
        tw.drawn = true;
        this.lastAnimStart = wall;
        this.lastAnim = { seq: tw.seq, kind: tw.evKind, start: wall };
        this.onFirstDraw(tw, wall);
      }
    }
    this.tweens = keep;
  }

  draw(tw, p) {
    if (tw.kind === "dot") {
      const pt = pointOn(tw.node, tw.reverse ? 1 - p : p);
      put(tw.el, "cx", Math.round(pt.x));
      put(tw.el, "cy", Math.round(pt.y));
      put(tw.el, "visibility", "visible");
    } else if (tw.kind === "flash") {
      put(tw.node.flash, "opacity", fade((tw.strong ? 1 : WEAK_FLASH) * (1 - p)));
    } else if (tw.kind === "pulse") {
      put(tw.node.pulse, "class", tw.error ? "pulse pulse-err" : "pulse");
      put(tw.node.pulse, "opacity", fade(1 - p));
    } else if (tw.kind === "ghost") {
      const { from, to, ghost } = tw.node;
      const e = p < 0.5 ? 2 * p * p : 1 - 2 * (1 - p) * (1 - p); // ease in-out
      const x = from.x + (to.x - from.x) * e;
      const y = from.y + (to.y - from.y) * e;
      const w = from.w + (to.w - from.w) * e;
      const h = from.h + (to.h - from.h) * e;
      put(ghost.rect, "x", Math.round(x)); put(ghost.rect, "y", Math.round(y));
      put(ghost.rect, "width", Math.round(w)); put(ghost.rect, "height", Math.round(h));
      put(ghost.label, "x", Math.round(x + w / 2)); put(ghost.label, "y", Math.round(y + h / 2 + 7));
      if (ghost.label.__text !== tw.vcpu) { ghost.label.textContent = tw.vcpu; ghost.label.__text = tw.vcpu; }
      put(ghost.g, "visibility", "visible");
    }
  }

  finish(tw) {
    if (tw.kind === "dot") { tw.el.__busy = false; put(tw.el, "visibility", "hidden"); }
    else if (tw.kind === "flash") put(tw.node.flash, "opacity", 0);
    else if (tw.kind === "pulse") put(tw.node.pulse, "opacity", 0);
    else if (tw.kind === "ghost") put(tw.node.ghost.g, "visibility", "hidden");
  }
}
