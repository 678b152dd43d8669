// The history bar: a scrubber over the run, step back, the "live" badge and the branch
// picker. It also makes Play, Step and → work on a view in the past (client-side steps;
// Play goes back to live first) and turns an action taken in the past into a fork.
const $ = (id) => document.getElementById(id);
const DRAW_MS = 100; // scrubber and position label refresh while events stream in

export class HistoryBar {
  /** history: History; controls: Controls (its hooks are extended); toast(text). */
  constructor(history, controls, send, toast) {
    Object.assign(this, { history, controls, send, toast });
    this.scrubber = $("scrubber");
    this.picker = $("branches");
    this.branchCount = 1;
    this.labels = new Map(); // branch id -> a tag shown in the picker ("lesson")
    this.onChosen = () => {}; // a branch's events are loaded (after choose)
    this.lastDraw = 0;
    this.scrubber.addEventListener("input", () => this.seek(Number(this.scrubber.value)));
    $("step-back").addEventListener("click", () => this.stepBack());
    this.picker.addEventListener("change", () => this.choose(Number(this.picker.value)));
    this.picker.addEventListener("focus", () => this.refreshBranches()); // heads move on
    Object.assign(controls.hooks, {
      beforePlay: () => this.toLive(),
      stepInHistory: (payload) => this.stepInHistory(payload),
      onStepBack: () => this.stepBack(),
    });
    history.onChange = () => this.draw();
    this.fillPicker([{ id: 0, fork_seq: -1, head_seq: null, last_action: null }], 0);
  }

  /** Move the view (pausing a running simulation: the past does not play). */
  seek(seq) {
    const at = this.history.seek(seq);
    if (this.controls.playing && !this.history.live) this.controls.toggle();
    return at;
  }

  stepBack() { return this.seek(this.history.view - 1); }

  /** → / Step while the view is in the past: walk the stored events instead of the server. */
  stepInHistory(payload) {
    if (this.history.live) return false;
    const from = this.history.view;
    const count = payload.count ?? 1;
    const to = this.history.advance(count, payload.kind ?? null);
    // Reached the head short of the goal: the server reveals the rest, as from the head.
    const rest = payload.kind ? (to > from && this.history.at(to)?.kind === payload.kind ? 0 : 1)
      : count - (to - from);
    if (rest > 0 && this.history.live) {
      this.controls.call("sim:step", payload.kind ? { kind: payload.kind } : { count: rest });
    }
    return true;
  }

  toLive() {
    if (this.history.live) return;
    this.history.seek(this.history.head);
    this.toast("back to live");
  }

  /** Extra sim:action fields: an action taken in the past forks there. */
  actionArgs() { return this.history.live ? {} : { at_seq: this.history.view }; }

  afterAction(ack) {
    if (!ack.ok || !ack.fork) return;
    this.history.fork(ack.fork.at_seq, ack.fork.branch);
    this.toast(`new branch #${ack.fork.branch} from event #${ack.fork.at_seq}; ` +
      `branch #${ack.fork.from_branch} stays in the branch list`);
    this.refreshBranches();
  }

  /** sim:status: the server's branch is authoritative; list again when branches change. */
  status(s) {
    if (s.branch == null) return;
    const changed = s.branch !== this.history.branch || s.branches !== this.branchCount;
    this.history.branch = s.branch;
    this.branchCount = s.branches;
    if (changed) this.refreshBranches();
  }

  async refreshBranches() {
    const ack = await this.send("sim:branches", {});
    if (ack.ok) this.fillPicker(ack.branches, ack.current);
  }

  fillPicker(branches, current) {
    this.picker.replaceChildren(...branches.map((b) => {
      const from = b.fork_seq < 0 ? "from the start" : `fork @ #${b.fork_seq}`;
      const last = b.last_action ? ` · ${b.last_action}` : "";
      const head = b.head_seq == null ? "" : ` · head #${b.head_seq}`;
      const tag = this.labels.has(b.id) ? ` · ${this.labels.get(b.id)}` : "";
      const opt = new Option(`#${b.id}${tag} · ${from}${head}${last}`, String(b.id));
      opt.dataset.head = String(b.head_seq);
      return opt;
    }));
    this.picker.value = String(current);
    this.picker.disabled = branches.length < 2;
  }

  /** Tag branch `id` in the picker (one tag per text: the lesson's branch of a new run;
   *  id null: the tag goes). */
  label(id, text) {
    for (const [k, v] of this.labels) if (v === text) this.labels.delete(k);
    if (id != null) this.labels.set(id, text);
    this.refreshBranches();
  }

  async choose(id) {
    if (id === this.history.branch) return { ok: true };
    if (this.controls.playing) await this.controls.toggle();
    const ack = await this.history.loadBranch(id);
    if (!ack.ok) this.toast(`${ack.error.code}: ${ack.error.message}`);
    else this.toast(`branch #${id}: ${this.history.events.length.toLocaleString("en")} events`);
    this.refreshBranches();
    if (ack.ok) this.onChosen(id);
    return ack;
  }

  frame(wall) {
    if (wall - this.lastDraw >= DRAW_MS) this.draw(wall);
  }

  draw(wall = performance.now()) {
    this.lastDraw = wall;
    const h = this.history;
    const max = String(Math.max(h.head, h.start));
    if (this.scrubber.max !== max) this.scrubber.max = max;
    if (this.scrubber.min !== String(h.start)) this.scrubber.min = String(h.start);
    if (this.scrubber.value !== String(h.view)) this.scrubber.value = String(h.view);
    const text = h.live ? `#${h.view}` : `#${h.view} of #${h.head}`;
    const pos = $("view-pos");
    if (pos.textContent !== text) pos.textContent = text;
    $("live-badge").hidden = !h.live;
    $("past-badge").hidden = h.live;
    document.body.classList.toggle("in-past", !h.live);
  }
}
