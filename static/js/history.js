// Time travel in the page: every revealed event of the current branch, and copies of the
// view state (keyframes) every KEYFRAME_EVERY events. seek(seq) restores the nearest
// keyframe at or before seq and re-applies the events after it, so any point of the run
// is drawn in at most KEYFRAME_EVERY applies. The server only forks and lists branches.
import { attachCaptions } from "./caption.js";

export const KEYFRAME_EVERY = 1000;
const EVENTS_CHUNK = 20000; // sim:events count per request (the server's maximum)

export class History {
  /** parts: {state, diagram, anim, timeline, send} — the objects main.js draws with. */
  constructor(parts) {
    Object.assign(this, parts);
    this.branch = 0;
    this.onChange = () => {};
    this.onMoved = () => {}; // the state jumped: main.js rebuilds the diagram if its shape changed
    this.timeline.lookup = (seq) => this.at(seq) ?? null;
    this.reset();
  }

  /** After state.reset(snapshot): the snapshot's state becomes keyframe 0; no events yet. */
  reset() {
    this.events = [];
    this.base = 0;
    this.head = -1;
    this.keyframes = [{ seq: this.state.snapSeq, st: this.state.clone() }];
    this.live = true;
    this.viewSeq = this.state.snapSeq;
    this.timeline.follow = true;
  }

  /** The earliest seq the view can show (the state of the first keyframe). */
  get start() { return this.keyframes[0].seq; }
  /** The seq the diagram shows: live, the last revealed one (even if the snapshot is newer). */
  get view() { return this.live ? this.head : this.viewSeq; }
  at(seq) { return this.events[seq - this.base]; }

  /** Events near seq (for the log when it jumps into the past). */
  around(seq, n) {
    const i = Math.max(0, seq - this.base - Math.floor(n / 2));
    return this.events.slice(i, i + n);
  }

  /** New events from the server (seq > head). They move the view only when it is live. */
  ingest(events) {
    if (!events.length) return this.live;
    if (!this.events.length) this.base = events[0].seq;
    for (const e of events) this.events.push(e);
    this.head = events[events.length - 1].seq;
    if (this.live) this.applyAll(events);
    return this.live;
  }

  /** Apply events in order to the state, taking a keyframe each KEYFRAME_EVERY past the last. */
  applyAll(events) {
    const st = this.state;
    let last = this.keyframes[this.keyframes.length - 1].seq;
    for (const e of events) {
      st.apply(e);
      if (e.seq - last >= KEYFRAME_EVERY) {
        this.keyframes.push({ seq: e.seq, st: st.clone() });
        last = e.seq;
      }
    }
  }

  applyRange(from, to) {
    const lo = Math.max(from, this.base);
    if (to >= lo) this.applyAll(this.events.slice(lo - this.base, to - this.base + 1));
  }

  /** Index of the last keyframe at or before seq (binary search). */
  keyframeAt(seq) {
    let lo = 0, hi = this.keyframes.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.keyframes[mid].seq <= seq) lo = mid; else hi = mid - 1;
    }
    return lo;
  }

  clamp(seq) { return Math.max(this.start, Math.min(Math.max(this.head, this.start), Math.round(seq))); }

  /** Put the state at seq: forward from here when close, else from the nearest keyframe. */
  moveTo(seq) {
    const cur = this.view;
    if (seq >= cur && seq - cur <= KEYFRAME_EVERY) {
      this.applyRange(cur + 1, seq);
      return;
    }
    const kf = this.keyframes[this.keyframeAt(seq)];
    Object.assign(this.state, kf.st.clone());
    this.state.dirty = new Set(["all"]);
    this.applyRange(kf.seq + 1, seq);
  }

  /** Show the machine as it was just after event seq: no animations, log row marked. */
  seek(seq) {
    seq = this.clamp(seq);
    this.moveTo(seq);
    this.onMoved();
    this.setView(seq);
    this.anim.reset(this.state.now); // tweens from another time must not stay on screen
    this.diagram.update(this.state);
    return seq;
  }

  setView(seq) {
    this.viewSeq = seq;
    this.live = seq >= this.head;
    if (this.live) this.timeline.followHead();
    else {
      this.timeline.follow = false;
      this.timeline.markView(seq, (s, n) => this.around(s, n));
    }
    this.onChange();
  }

  /** Step the view forward through stored events, animating them as a step would. */
  advance(count = 1, kind = null) {
    const from = this.view;
    let to = Math.min(this.head, from + count);
    if (kind) {
      to = this.head;
      for (let s = from + 1; s <= this.head; s++) if (this.at(s)?.kind === kind) { to = s; break; }
    }
    this.moveTo(to);
    this.onMoved();
    this.setView(to);
    const lo = Math.max(from + 1, this.base);
    this.anim.add(this.events.slice(lo - this.base, to - this.base + 1));
    return to;
  }

  /** The server forked at atSeq: the future after it is gone from this view. */
  fork(atSeq, branch) {
    this.events.length = Math.max(0, atSeq - this.base + 1);
    this.keyframes = this.keyframes.filter((k) => k.seq <= atSeq);
    this.head = atSeq;
    this.branch = branch;
    this.timeline.truncate(atSeq);
    this.setView(atSeq);
  }

  /** Make another branch current and load its events (the old future comes back). */
  async loadBranch(id) {
    const ack = await this.send("sim:branch", { id });
    if (!ack.ok) return ack;
    const events = [];
    let from = this.events.length ? this.base : 0;
    for (;;) {
      const page = await this.send("sim:events", { from_seq: from, count: EVENTS_CHUNK, branch: id });
      if (!page.ok) return page;
      attachCaptions(page.events, page.captions);
      for (const e of page.events) events.push(e);
      const last = page.events.length ? page.events[page.events.length - 1].seq : page.head_seq;
      if (!page.events.length || last >= page.head_seq) break;
      from = last + 1;
    }
    this.branch = id;
    this.rebuild(events);
    return ack;
  }

  /** Replace every stored event and rebuild the keyframes from keyframe 0. */
  rebuild(events) {
    const kf0 = this.keyframes[0];
    Object.assign(this.state, kf0.st.clone());
    this.state.dirty = new Set(["all"]);
    this.keyframes = [kf0];
    this.events = [];
    this.head = -1;
    this.live = true;
    this.ingest(events);
    this.onMoved();
    this.timeline.clear();
    this.timeline.push(events);
    this.timeline.followHead();
    this.anim.reset(this.state.now);
    this.diagram.update(this.state);
    this.onChange();
  }
}
