// Lesson player: a guided tour that asks the student to predict, then runs the model and
// reveals (docs/teaching.md). The plan comes from /api/lessons/<file>: each step's prompt,
// its action, where its answer is (event kind, filter, field: never the value) and the seq
// range of its events, which this page reveals in the same deterministic run. The answer
// is read from the events this page received, so the lesson cannot disagree with the model.
// Steps already run are kept as they were: Back and Next move the view through the
// session's history (the scrubber's seek: keyframes plus the stored events), never re-run.
import { html, summarize } from "./format.js";
import { captionOf } from "./caption.js";

const MAX_STEP_COUNT = 10000; // events one sim:step may ask for (the toolbar's Step N bound)

function fieldValue(e, path) {
  let v = e;
  for (const part of path.split(".")) {
    if (v === null || typeof v !== "object" || !(part in v)) return undefined;
    v = v[part];
  }
  return v;
}
const same = (a, b) => typeof a === typeof b && a === b; // true is not 1, "3" is not 3
const matches = (e, kind, where = {}) =>
  e.kind === kind && Object.entries(where).every(([k, v]) => same(fieldValue(e, k), v));

/** A caption's short Markdown: **bold**, *italic*, `code`; the rest as plain text. */
function markdown(text, parent) {
  let last = 0;
  for (const m of text.matchAll(/\*\*[^*]+\*\*|\*[^*]+\*|`[^`]+`/g)) {
    parent.append(text.slice(last, m.index));
    const t = m[0];
    if (t.startsWith("**")) html("strong", {}, t.slice(2, -2), parent);
    else if (t.startsWith("`")) html("code", {}, t.slice(1, -1), parent);
    else html("em", {}, t.slice(1, -1), parent);
    last = m.index + t.length;
  }
  parent.append(text.slice(last));
}

const shown = (v) => JSON.stringify(v);

export class LessonPlayer {
  /** hooks: call(type, payload) -> ack, act(action, args) -> ack, highlight(keys), toast(text),
   *  showPanel() (the side panel holding the player, folded on a projector-sized window),
   *  history (History: the branch's revealed events and the view), seek(seq) (the scrubber's),
   *  forked(ack) (a sim:fork ack: the view drops the old future), chooseBranch(id) -> ack,
   *  labelBranch(id, text) (a tag in the branch list), placed() (the player was shown or
   *  hidden: in presentation mode it sits beside or under the diagram), leavePresentation(). */
  constructor(root, button, hooks) {
    this.root = root;
    this.hooks = hooks;
    this.plan = null;
    button.addEventListener("click", () => (this.root.hidden ? this.open() : this.close()));
  }

  close() {
    this.root.hidden = true;
    this.plan = null;
    this.hooks.highlight([]);
    this.hooks.labelBranch(null, "lesson");
    this.hooks.placed();
  }

  /** Keyboard (also in presentation mode, where a clicker sends PageDown/PageUp): n or
   *  PageDown runs the step, or goes to the next one once it has run; b or PageUp goes
   *  back; 1-9 pick an answer. True when the key was the player's. */
  key(ev) {
    if (!this.plan || this.root.hidden || this.exploring || this.busy) return false;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return false;
    if (ev.target.closest("select, textarea, input:not([type=radio])")) return false;
    const click = (id) => {
      const b = this.root.querySelector(`[data-testid=${id}]`);
      if (b && !b.disabled) b.click();
      return Boolean(b);
    };
    if (ev.key === "n" || ev.key === "N" || ev.key === "PageDown") return click("lesson-run") || click("lesson-next");
    if (ev.key === "b" || ev.key === "B" || ev.key === "PageUp") return click("lesson-back");
    if (/^[1-9]$/.test(ev.key)) {
      const choice = this.root.querySelector(`[data-testid=lesson-choice-${Number(ev.key) - 1}]`);
      if (!choice || choice.disabled || choice.closest("fieldset")?.disabled) return false;
      choice.checked = true;
      choice.dispatchEvent(new Event("change"));
      return true;
    }
    return false;
  }

  /** The lesson picker; `problem` (a refused link) is said above it, so a bad link never
   *  leaves an empty player. */
  async open(problem = null) {
    this.root.hidden = false;
    this.hooks.showPanel();
    this.root.replaceChildren();
    const body = html("div", { class: "lesson-body" }, null, this.root);
    html("h2", {}, "Lessons", body);
    if (problem) html("p", { class: "lesson-error", role: "alert", "data-testid": "lesson-error" }, problem, body);
    const reply = await fetch("/api/lessons");
    const list = reply.ok ? await reply.json() : [];
    const sel = html("select", { "data-testid": "lesson-select", "aria-label": "lesson" }, null, body);
    for (const l of list) sel.add(new Option(`${l.title} (${l.questions} questions)`, l.file));
    const nav = html("div", { class: "lesson-nav" }, null, this.root);
    const start = html("button", { type: "button", "data-testid": "lesson-start", class: "primary" }, "Start", nav);
    start.addEventListener("click", () => this.start(sel.value));
    this.presentTools(nav, false);
  }

  start(file) { return this.openAt(file, 1); }

  /** A page opened with ?lesson=NAME&step=K: that lesson at step K. */
  openLink(params) {
    const raw = params.get("step") ?? "1";
    return this.openAt(params.get("lesson"), /^\d+$/.test(raw) ? Number(raw) : raw);
  }

  /** Load lesson `file` at the start of `step` (1-based): the server replays the lesson's
   *  run through the step before it (sim:lesson); earlier steps show their answers. */
  async openAt(file, step) {
    this.root.hidden = false;
    this.hooks.showPanel();
    const ack = await this.hooks.call("sim:lesson", { lesson: file, step });
    if (!ack.ok) {
      this.plan = null;
      await this.open(`Cannot open lesson ${JSON.stringify(file)} at step ${JSON.stringify(step)}: ${ack.error.message}`);
      return ack;
    }
    // index: the step shown; frontier: the first step not run yet (those before it are kept).
    // branch: the lesson's own (a load starts a new history; Explore forks off it).
    Object.assign(this, { plan: ack.plan, file, index: step - 1, frontier: step - 1, records: [],
      branch: this.history.branch, off: false });
    this.hooks.labelBranch(this.branch, "lesson");
    for (let i = 0; i < this.frontier; i++) this.records[i] = this.resolve(i, undefined);
    this.render();
    return ack;
  }

  /** The address of the step shown: opening it starts the lesson there (none while the
   *  student explores another branch: the address is that branch's own link). */
  get link() {
    if (!this.plan || this.exploring) return null;
    const q = new URLSearchParams({ lesson: this.file, step: String(this.index + 1) });
    return `${location.origin}${location.pathname}?${q}`;
  }

  async copyLink(button) {
    const url = this.link;
    button.dataset.url = url;
    try {
      await navigator.clipboard.writeText(url);
      this.hooks.toast("link copied: it opens this lesson at this step");
    } catch {
      this.hooks.toast(`copy this link: ${url}`);
    }
  }

  get history() { return this.hooks.history; }

  /** The events of step i that the session's history holds. */
  stepEvents(i) {
    const { first_seq: lo, last_seq: hi } = this.plan.steps[i];
    const h = this.history;
    const out = [];
    for (let s = Math.max(lo, h.base); s <= Math.min(hi, h.head); s++) out.push(h.at(s));
    return out;
  }

  /** Put the view where step `index` is: a step already run at its last event (as it was
   *  left), the next step to run at the head of the run. */
  place() {
    const h = this.history;
    const step = this.plan.steps[this.index];
    const want = this.index < this.frontier ? step.last_seq : h.head;
    if (h.view !== want) this.hooks.seek(want);
  }

  /** True while the page shows another branch than the lesson's. */
  get exploring() { return this.plan != null && this.history.branch !== this.branch; }

  /** sim:status: the branch changed (Explore, the branch picker, an action in the past). */
  status() {
    if (!this.plan || this.busy || this.exploring === this.off) return;
    this.render();
  }

  /** Another branch's events were loaded (the branch picker): draw the player for it. */
  branchLoaded() { if (this.plan && !this.busy) this.render(); }

  /** "Explore from here": a free branch forked where the view is; the lesson's stays. */
  async explore() {
    const at = this.history.view;
    const ack = await this.hooks.call("sim:fork", { at_seq: at });
    if (!ack.ok) return ack;
    this.hooks.forked(ack);
    this.render();
    return ack;
  }

  /** Back to the lesson's branch, at the step that was shown. */
  async resume() {
    this.busy = true; // the status of the switch comes before the branch's events
    try {
      await this.hooks.chooseBranch(this.branch);
    } finally {
      this.busy = false;
    }
    this.render();
  }

  renderExplore() {
    this.root.replaceChildren();
    const body = html("div", { class: "lesson-body" }, null, this.root);
    html("h2", {}, this.plan.title, body);
    const step = this.plan.steps[this.index];
    html("p", { class: "lesson-branch", "data-testid": "lesson-branch" },
      `Exploring freely on branch #${this.history.branch}: play, step and act as you like. ` +
      `The lesson is on branch #${this.branch} (marked “lesson” in the branch list), ` +
      `kept at step ${step.step} of ${step.of}.`, body);
    const nav = html("div", { class: "lesson-nav" }, null, this.root);
    const back = html("button", { type: "button", class: "primary", "data-testid": "lesson-return" },
      `Back to the lesson (branch #${this.branch})`, nav);
    back.addEventListener("click", () => this.resume());
    this.presentTools(nav, false);
    this.hooks.highlight([]);
  }

  render() {
    this.off = this.exploring;
    if (this.off) { this.renderExplore(); return; }
    const { plan, index } = this;
    const step = plan.steps[index];
    const done = index < this.frontier;
    const rec = this.records[index] ?? {};
    this.place();
    this.root.replaceChildren();
    const body = html("div", { class: "lesson-body" }, null, this.root); // scrolls; the buttons stay
    html("h2", {}, plan.title, body);
    if (index === 0 && plan.summary) markdown(plan.summary, html("p", { class: "lesson-summary" }, null, body));
    html("div", { class: "lesson-count", "data-testid": "lesson-count" }, `step ${step.step} of ${step.of}`, body);
    markdown(step.caption, html("p", { class: "lesson-caption", "data-testid": "lesson-caption" }, null, body));
    this.hooks.highlight(step.highlight_keys);
    if (step.action) {
      html("p", { class: "lesson-action", "data-testid": "lesson-action" },
        `${done ? "Action taken" : "Your action"}: ${step.action.prompt ?? `${step.action.name} ${shown(step.action.args ?? {})}`}`, body);
    }
    const q = step.question;
    if (q) this.renderQuestion(q, done ? rec.given : rec.draft, done, body);
    if (done && q) this.renderVerdict(q, rec, body).scrollIntoView({ block: "nearest" }); // a short player scrolls
    const nav = html("div", { class: "lesson-nav" }, null, this.root);
    const back = html("button", { type: "button", "data-testid": "lesson-back", title: "The previous step, as it was (b)" }, "◀ Back", nav);
    back.disabled = index === 0;
    back.addEventListener("click", () => this.back());
    if (done) {
      const last = index + 1 >= plan.steps.length;
      const next = html("button", { type: "button", class: "primary", "data-testid": "lesson-next", title: "n" },
        last ? "Finish" : "Next step ▶", nav);
      next.addEventListener("click", () => this.next());
    } else {
      const label = step.action ? "Do it and run" : q ? "Run and reveal" : "Run";
      const run = html("button", { type: "button", class: "primary", "data-testid": "lesson-run", title: "n" }, label, nav);
      run.addEventListener("click", () => this.run(run));
    }
    const explore = html("button", { type: "button", "data-testid": "lesson-explore",
      title: "Fork a free branch here to play with; the lesson stays on its own branch" }, "Explore from here", nav);
    explore.disabled = this.history.head < 0; // nothing revealed yet to fork from
    explore.addEventListener("click", () => this.explore());
    const link = html("button", { type: "button", "data-testid": "lesson-link", title: "Copy a link that opens this lesson at this step" }, "Copy link to this step", nav);
    link.addEventListener("click", () => this.copyLink(link));
    this.presentTools(nav);
  }

  /** In presentation mode (CSS shows them there only): the keys, and a way out without one. */
  presentTools(nav, keys = true) {
    html("span", { class: "lesson-keys present-only", "data-testid": "lesson-keys" },
      keys ? "n run / next · b back · 1–9 answer · p leave" : "p leave", nav);
    const leave = html("button", { type: "button", class: "present-only", "data-testid": "lesson-leave-present" },
      "Leave presentation", nav);
    leave.addEventListener("click", () => this.hooks.leavePresentation());
  }

  renderQuestion(q, value, locked, parent) {
    const form = html("fieldset", { class: "lesson-question", "data-testid": "lesson-question" }, null, parent);
    form.disabled = locked;
    html("legend", {}, `Predict: ${q.ask}`, form);
    const keep = () => { if (!locked) this.records[this.index] = { draft: this.given() }; };
    if (q.choices) {
      q.choices.forEach((c, i) => {
        const label = html("label", {}, null, form);
        const input = html("input", { type: "radio", name: "lesson-answer", value: shown(c), "data-testid": `lesson-choice-${i}` }, null, label);
        input.checked = value !== undefined && same(value, c);
        input.addEventListener("change", keep);
        label.append(` ${typeof c === "string" ? c : shown(c)}`);
      });
    } else {
      const input = html("input", { type: "number", "data-testid": "lesson-number", "aria-label": "your answer" }, null, form);
      if (value !== undefined) input.value = String(value);
      input.addEventListener("input", keep);
    }
  }

  renderVerdict(q, rec, parent) {
    const box = html("div", { class: "lesson-verdict", "data-testid": "lesson-verdict" }, null, parent);
    if (!rec.event) {
      box.textContent = "The model did not produce the deciding event on this page (was the run changed?)";
      return box;
    }
    const answer = rec.answer;
    if (rec.given === undefined) {
      html("strong", { "data-testid": "lesson-result" }, "Not answered here", box);
    } else {
      box.classList.add(rec.right ? "right" : "wrong");
      html("strong", { "data-testid": "lesson-result" }, rec.right ? "✓ Right" : "✗ Not quite", box);
    }
    box.append(` — the model says ${typeof answer === "string" ? answer : shown(answer)}.`);
    html("div", { class: "lesson-event", "data-testid": "lesson-event" }, `#${rec.event.seq} ${summarize(rec.event)}`, box);
    html("p", { class: "lesson-why", "data-testid": "lesson-why" }, captionOf(rec.event), box);
    if (q.explain) markdown(q.explain, html("p", {}, null, box));
    return box;
  }

  given() {
    const q = this.plan.steps[this.index].question;
    if (!q) return undefined;
    if (q.choices) {
      const checked = this.root.querySelector("input[name=lesson-answer]:checked");
      return checked ? JSON.parse(checked.value) : undefined;
    }
    const text = this.root.querySelector("[data-testid=lesson-number]").value;
    return text === "" ? undefined : Number(text);
  }

  async run(button) {
    const step = this.plan.steps[this.index];
    const given = this.given();
    if (step.question && given === undefined) { this.hooks.toast("Predict first: pick an answer"); return; }
    button.disabled = true;
    const h = this.history;
    if (!h.live) this.hooks.seek(h.head); // scrubbed away meanwhile: an action there would fork
    if (step.action) {
      const ack = await this.hooks.act(step.action.name, step.action.args ?? {});
      if (!ack.ok) { button.disabled = false; return; }
    }
    while (h.head < step.last_seq) {
      const count = Math.min(step.last_seq - h.head, MAX_STEP_COUNT);
      const ack = await this.hooks.call("sim:step", { count });
      if (!ack.ok || ack.revealed === 0) break;
    }
    this.records[this.index] = this.resolve(this.index, given);
    this.frontier = this.index + 1;
    this.render();
  }

  /** Step i's question answered `given` (undefined: not answered on this page), judged by
   *  the deciding event among the step's events in the history. */
  resolve(i, given) {
    const q = this.plan.steps[i].question;
    if (!q) return { given };
    const { kind, where, field } = q.answer;
    const event = this.stepEvents(i).find((e) => e && matches(e, kind, where));
    if (!event) return { given };
    const answer = fieldValue(event, field);
    const right = given !== undefined && (same(given, answer) || (typeof given === "number" && given === answer));
    return { given, event, answer, right };
  }

  back() {
    if (!this.plan || this.index === 0) return;
    this.index -= 1;
    this.render();
  }

  next() {
    if (!this.plan || this.index >= this.frontier) return;
    if (this.index + 1 >= this.plan.steps.length) {
      const title = this.plan.title;
      this.close();
      this.hooks.toast(`Lesson done: ${title}`);
      return;
    }
    this.index += 1;
    this.render();
  }

  /** What tests read (window.__gunyah.lesson). */
  get state() {
    if (!this.plan) return null;
    return { file: this.file, index: this.index, frontier: this.frontier, branch: this.branch,
      steps: this.plan.steps.map((s) => [s.first_seq, s.last_seq]) };
  }
}
