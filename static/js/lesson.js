// Lesson player: a guided tour that asks the student to predict, then runs the model and
// reveals (docs/teaching.md). The plan comes from /api/lessons/<file>: each step's prompt,
// its action, where its answer is (event kind, filter, field: never the value) and the seq
// range of its events, which this page reveals in the same deterministic run. The answer
// is read from the events this page received, so the lesson cannot disagree with the model.
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
   *  showPanel() (the side panel holding the player, folded on a projector-sized window). */
  constructor(root, button, hooks) {
    this.root = root;
    this.hooks = hooks;
    this.plan = null;
    this.seen = [];
    this.lastSeq = -1;
    button.addEventListener("click", () => (this.root.hidden ? this.open() : this.close()));
  }

  close() { this.root.hidden = true; this.plan = null; this.hooks.highlight([]); }

  async open() {
    this.hooks.showPanel();
    this.root.hidden = false;
    this.root.replaceChildren();
    html("h2", {}, "Lessons", this.root);
    const reply = await fetch("/api/lessons");
    const list = reply.ok ? await reply.json() : [];
    const sel = html("select", { "data-testid": "lesson-select", "aria-label": "lesson" }, null, this.root);
    for (const l of list) sel.add(new Option(`${l.title} (${l.questions} questions)`, l.file));
    const start = html("button", { type: "button", "data-testid": "lesson-start", class: "primary" }, "Start", this.root);
    start.addEventListener("click", () => this.start(sel.value));
  }

  async start(file) {
    const reply = await fetch(`/api/lessons/${encodeURIComponent(file)}`);
    const plan = await reply.json();
    if (!reply.ok) { this.hooks.toast(`${plan.error.code}: ${plan.error.message}`); return; }
    const payload = plan.scenario ? { scenario: plan.scenario } : { text: plan.scenario_text, filename: file };
    if (plan.seed != null) payload.seed = plan.seed;
    const ack = await this.hooks.call("sim:load", payload);
    if (!ack.ok) return;
    // The load revealed the scenario's boot: the lesson's first step starts after it.
    Object.assign(this, { plan, index: 0, seen: [], lastSeq: ack.head_seq ?? -1 });
    this.render();
  }

  /** Every event the page receives; the current step keeps those in its seq range. */
  feed(events) {
    if (!this.plan) return;
    const step = this.plan.steps[this.index];
    for (const e of events) {
      this.lastSeq = Math.max(this.lastSeq, e.seq);
      if (step && e.seq >= step.first_seq && e.seq <= step.last_seq) this.seen.push(e);
    }
  }

  render() {
    const { plan, index } = this;
    const step = plan.steps[index];
    this.root.replaceChildren();
    html("h2", {}, plan.title, this.root);
    if (index === 0 && plan.summary) markdown(plan.summary, html("p", { class: "lesson-summary" }, null, this.root));
    html("div", { class: "lesson-count", "data-testid": "lesson-count" }, `step ${step.step} of ${step.of}`, this.root);
    markdown(step.caption, html("p", { class: "lesson-caption", "data-testid": "lesson-caption" }, null, this.root));
    this.hooks.highlight(step.highlight_keys);
    if (step.action) {
      html("p", { class: "lesson-action", "data-testid": "lesson-action" },
        `Your action: ${step.action.prompt ?? `${step.action.name} ${shown(step.action.args ?? {})}`}`, this.root);
    }
    const q = step.question;
    if (q) {
      const form = html("fieldset", { class: "lesson-question", "data-testid": "lesson-question" }, null, this.root);
      html("legend", {}, `Predict: ${q.ask}`, form);
      if (q.choices) {
        q.choices.forEach((c, i) => {
          const label = html("label", {}, null, form);
          html("input", { type: "radio", name: "lesson-answer", value: shown(c), "data-testid": `lesson-choice-${i}` }, null, label);
          label.append(` ${typeof c === "string" ? c : shown(c)}`);
        });
      } else {
        html("input", { type: "number", "data-testid": "lesson-number", "aria-label": "your answer" }, null, form);
      }
    }
    const label = step.action ? "Do it and run" : q ? "Run and reveal" : "Run";
    const run = html("button", { type: "button", class: "primary", "data-testid": "lesson-run" }, label, this.root);
    run.addEventListener("click", () => this.run(run));
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
    if (step.action) {
      const ack = await this.hooks.act(step.action.name, step.action.args ?? {});
      if (!ack.ok) { button.disabled = false; return; }
    }
    while (this.lastSeq < step.last_seq) {
      const count = Math.min(step.last_seq - this.lastSeq, MAX_STEP_COUNT);
      const ack = await this.hooks.call("sim:step", { count });
      if (!ack.ok || ack.revealed === 0) break;
      this.lastSeq = Math.max(this.lastSeq, ack.last_seq);
    }
    this.reveal(step, given);
  }

  reveal(step, given) {
    const q = step.question;
    if (q) {
      const { kind, where, field } = q.answer;
      const event = this.seen.find((e) => matches(e, kind, where));
      const box = html("div", { class: "lesson-verdict", "data-testid": "lesson-verdict" }, null, this.root);
      if (!event) {
        box.textContent = "The model did not produce the deciding event on this page (was the run changed?)";
      } else {
        const answer = fieldValue(event, field);
        const right = same(given, answer) || (typeof given === "number" && given === answer);
        box.classList.add(right ? "right" : "wrong");
        html("strong", { "data-testid": "lesson-result" }, right ? "✓ Right" : "✗ Not quite", box);
        box.append(` — the model says ${typeof answer === "string" ? answer : shown(answer)}.`);
        html("div", { class: "lesson-event", "data-testid": "lesson-event" }, `#${event.seq} ${summarize(event)}`, box);
        html("p", { class: "lesson-why", "data-testid": "lesson-why" }, captionOf(event), box);
        if (q.explain) markdown(q.explain, html("p", {}, null, box));
      }
    }
    const last = this.index + 1 >= this.plan.steps.length;
    const next = html("button", { type: "button", "data-testid": "lesson-next" }, last ? "Finish" : "Next step", this.root);
    next.addEventListener("click", () => {
      if (last) { const title = this.plan.title; this.close(); this.hooks.toast(`Lesson done: ${title}`); return; }
      this.index += 1;
      this.seen = [];
      this.render();
    });
  }
}
