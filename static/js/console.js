// Hypercall console: a VM's vCPU 0 makes any hypercall typed by its Gunyah name with
// named arguments ("msgqueue_send capid=0x… size=16 flags=1"). The line is parsed and
// completed here from the server's table (sim:hello `hypercalls`); the server checks it
// all again and runs it as the `hvc` action, so X0 is the real error. Its history is
// rebuilt from the trace (the `user.action` events), so replays and links show it too.
import { html, hex } from "./format.js";

const MAX_EVENTS_KEPT = 4000;   // recent events, to find what a call caused
const MAX_ENTRIES = 100;        // console lines shown per VM
const MAX_EFFECTS_SHOWN = 12;
const MAX_SUGGESTIONS = 12;
const MAX_REGISTER_CHARS = 20;  // as the server: 0x + 16 hex digits, or 20 decimal digits
const REGISTER = /^(0x[0-9a-f]{1,16}|[0-9]{1,20})$/i;

/** "call k=v k=v" -> {call, args} (values as typed: the server parses registers) or {error}. */
export function parseLine(line, table) {
  const tokens = line.trim().split(/\s+/).filter(Boolean);
  if (!tokens.length) return { error: "type a hypercall, e.g. hypervisor_identify" };
  const [call, ...rest] = tokens;
  const spec = table?.calls?.[call];
  if (!spec) return { error: `no hypercall '${call}'` };
  const args = {};
  for (const tok of rest) {
    const eq = tok.indexOf("=");
    if (eq <= 0) return { error: `'${tok}' is not name=value` };
    const key = tok.slice(0, eq), value = tok.slice(eq + 1);
    const param = spec.args[key];
    if (!param) return { error: `${call} takes no argument '${key}'; arguments: ${Object.keys(spec.args).join(", ") || "none"}` };
    if (param.kind !== "text" && (value.length > MAX_REGISTER_CHARS || !REGISTER.test(value))) {
      return { error: `${key}: a 64-bit register, decimal or 0x hex` };
    }
    args[key] = value;
  }
  const missing = Object.entries(spec.args).find(([k, p]) => p.required && !(k in args));
  if (missing) return { error: `${call} needs ${missing[0]}=` };
  return { call, args };
}

/** Completions for the last token of `line`: [{text (the whole new line), label}]. */
export function complete(line, table, caps) {
  const head = line.replace(/\S*$/, "");
  const tok = line.slice(head.length);
  const words = head.trim().split(/\s+/).filter(Boolean);
  const calls = table?.calls ?? {};
  if (!words.length) {
    return Object.keys(calls).filter((n) => n.startsWith(tok)).sort()
      .map((n) => ({ text: `${n} `, label: `${n}  (${calls[n].number == null ? "documented, no call number" : hex(calls[n].number)})` }));
  }
  const spec = calls[words[0]];
  if (!spec) return [];
  const eq = tok.indexOf("=");
  if (eq < 0) {
    const used = new Set(words.slice(1).map((w) => w.split("=")[0]));
    return Object.entries(spec.args).filter(([k]) => !used.has(k) && k.startsWith(tok))
      .map(([k, p]) => ({ text: `${head}${k}=`, label: `${k}=  ${p.required ? "" : "(optional) "}${describe(p)}` }));
  }
  const param = spec.args[tok.slice(0, eq)];
  if (param?.kind !== "capid") return [];
  const typed = tok.slice(eq + 1).toLowerCase();
  return caps.filter((c) => c.type === param.object)
    .map((c) => ({ c, id: hex(c.capid) }))
    .filter(({ id }) => id.startsWith(typed) || String(parseInt(id, 16)).startsWith(typed))
    .map(({ c, id }) => {
      const lacks = param.rights.filter((r) => !c.rights_names.includes(r));
      return { lacks: lacks.length, text: `${head}${tok.slice(0, eq)}=${id} `,
        label: `${id}  ${c.object} (${c.rights_names.join("+")})${lacks.length ? `  lacks ${lacks.join("+")}` : ""}` };
    })
    .sort((a, b) => a.lacks - b.lacks); // caps with every right the call needs first
}

function describe(p) {
  if (p.kind === "capid") return `capid of a ${p.object} cap with ${p.rights.join("+")}`;
  if (p.kind === "text") return `text, at most ${p.max_chars} characters`;
  return p.note || "64-bit register";
}

function argText(args) {
  return Object.entries(args ?? {}).map(([k, v]) => `${k}=${typeof v === "number" ? hex(v) : v}`).join(" ");
}

function regText(v) {
  return typeof v === "number" ? `${hex(v)} (${v})` : JSON.stringify(v);
}

export class HvcConsole {
  /** act(action, args, ev) -> Promise of the ack; state: the SimState mirror. */
  constructor(state, act) {
    Object.assign(this, { state, act, table: null, vm: null, root: null });
    this.entries = new Map();  // action id -> {vm, line, ack, hvc, effects}
    this.events = [];          // recent events, oldest first
    this.recall = [];          // lines typed in this tab, for the Up key
  }

  setTable(table) { this.table = table; }

  /** Forget everything (a new snapshot: another run, a reset, a rewind to boot). */
  reset() {
    this.entries.clear();
    this.events = [];
    if (this.root) this.render();
  }

  /** New trace events: remember user calls made by the console and their results. */
  ingest(events) {
    let changed = false;
    for (const e of events) {
      this.events.push(e);
      if (e.kind === "user.action" && e.action === "hvc") {
        const old = this.entries.get(e.id);
        this.entries.set(e.id, { ...old, vm: e.args.vm, line: `${e.args.call} ${argText(e.args.args)}`.trim() });
        while (this.entries.size > MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value);
        changed = true;
      } else if (e.kind === "hvc" && e.action != null && this.entries.has(e.action)) {
        const from = e.effects_from ?? e.seq;
        const effects = this.events.filter((x) => x.seq >= from && x.seq < e.seq);
        Object.assign(this.entries.get(e.action), { hvc: e, effects });
        changed = true;
      }
    }
    if (this.events.length > MAX_EVENTS_KEPT) this.events.splice(0, this.events.length - MAX_EVENTS_KEPT);
    if (changed && this.root) this.renderLog();
  }

  /** Open the console for VM `name` (replaces an open one). */
  open(name) {
    this.vm = name;
    if (!this.root) this.build();
    this.root.hidden = false;
    this.render();
    this.input.focus();
  }

  close() { if (this.root) this.root.hidden = true; }

  build() {
    const r = html("section", { class: "hvc-console", "data-testid": "hvc-console", role: "dialog",
      "aria-label": "Hypercall console" }, null, document.body);
    const head = html("div", { class: "hvc-head" }, null, r);
    this.title = html("strong", { "data-testid": "hvc-title" }, "", head);
    const x = html("button", { type: "button", class: "small", "data-testid": "hvc-close", "aria-label": "Close" }, "×", head);
    x.addEventListener("click", () => this.close());
    html("p", { class: "hint" }, "Type a hypercall with named arguments; Tab completes call names, " +
      "argument names and this VM's capids. Its vCPU 0 makes the call with its own CSpace.", r);
    this.log = html("ol", { class: "hvc-log", "data-testid": "hvc-log", "aria-live": "polite" }, null, r);
    const form = html("form", { class: "hvc-form" }, null, r);
    html("span", { class: "hvc-prompt" }, "hvc>", form);
    this.input = html("input", { type: "text", "data-testid": "hvc-input", autocomplete: "off",
      spellcheck: "false", "aria-label": "Hypercall" }, null, form);
    this.error = html("p", { class: "result bad", "data-testid": "hvc-error", role: "alert" }, "", r);
    this.list = html("ul", { class: "hvc-complete", "data-testid": "hvc-complete", role: "listbox" }, null, r);
    form.addEventListener("submit", (ev) => { ev.preventDefault(); this.submit(ev); });
    this.input.addEventListener("input", () => this.suggest());
    this.input.addEventListener("focus", () => this.suggest());
    this.input.addEventListener("keydown", (ev) => this.key(ev));
    this.root = r;
  }

  caps() { return this.state.vms.get(this.vm)?.caps ?? []; }

  suggest() {
    this.shown = complete(this.input.value, this.table, this.caps()).slice(0, MAX_SUGGESTIONS);
    this.list.replaceChildren(...this.shown.map((s) => {
      const li = html("li", { role: "option", "data-testid": "hvc-option" }, s.label);
      li.addEventListener("mousedown", (ev) => { ev.preventDefault(); this.accept(s); });
      return li;
    }));
  }

  accept(s) {
    this.input.value = s.text;
    this.suggest();
    this.input.focus();
  }

  key(ev) {
    if (ev.key === "Tab" && this.shown?.length) { ev.preventDefault(); this.accept(this.shown[0]); }
    else if (ev.key === "Escape") this.close();
    else if (ev.key === "ArrowUp" && this.recall.length) {
      ev.preventDefault();
      this.recallAt = Math.max(0, (this.recallAt ?? this.recall.length) - 1);
      this.input.value = this.recall[this.recallAt];
    }
  }

  async submit(ev) {
    const line = this.input.value;
    const parsed = parseLine(line, this.table);
    if (parsed.error) { this.error.textContent = parsed.error; return; }
    this.error.textContent = "";
    this.recall.push(line.trim());
    this.recallAt = undefined;
    const ack = await this.act("hvc", { vm: this.vm, call: parsed.call, args: parsed.args }, ev);
    if (!ack.ok) { this.error.textContent = `${ack.error.code}: ${ack.error.message}`; return; }
    this.input.value = "";
    this.suggest();
    const entry = this.entries.get(ack.action_id) ?? { vm: this.vm, line: line.trim() };
    this.entries.set(ack.action_id, { ...entry, ack });
    this.renderLog();
  }

  render() {
    this.title.textContent = `Hypercall console: ${this.vm} (vCPU 0)`;
    this.renderLog();
  }

  renderLog() {
    const rows = [...this.entries.entries()].filter(([, en]) => en.vm === this.vm);
    this.log.replaceChildren(...rows.map(([id, en]) => this.row(id, en)));
    this.log.scrollTop = this.log.scrollHeight;
  }

  /** Why a capability error came: what the capid names in this VM, what the call needs. */
  capWhy(e) {
    if (!e.result.startsWith("CSPACE_")) return "";
    const param = this.table?.calls?.[e.name]?.args?.capid;
    const capid = e.args?.capid;
    if (!param || typeof capid !== "number") return "";
    const need = `${e.name} needs a ${param.object} cap with ${param.rights.join("+")}`;
    const cap = (this.state.vms.get(e.vm)?.caps ?? []).find((c) => c.capid === capid);
    if (!cap) return `${hex(capid)} names no capability in ${e.vm}'s CSpace; ${need}`;
    return `${hex(capid)} in ${e.vm} is ${cap.object} (${cap.type}, ${cap.rights_names.join("+")}); ${need}`;
  }

  row(id, en) {
    const li = html("li", { "data-testid": "hvc-entry" });
    html("div", { class: "hvc-line" }, `#${id} hvc> ${en.line}`, li);
    const e = en.hvc;
    if (!e) {
      html("div", { class: "hint" }, "queued: step or play to see vCPU 0 make it", li);
      return li;
    }
    const err = this.table?.errors?.[e.result];
    const x0 = html("div", { class: e.result === "OK" ? "hvc-x0 ok" : "hvc-x0 bad", "data-testid": "hvc-x0" },
      `X0 = ${e.result} (${err?.code ?? "?"})`, li);
    if (err?.meaning) html("span", { class: "hvc-meaning" }, ` — ${err.meaning}`, x0);
    const { detail, ...regs } = e.ret ?? {};
    if (detail) html("div", { class: "hvc-detail" }, `hypervisor: ${detail}`, li);
    const why = this.capWhy(e);
    if (why) html("div", { class: "hvc-detail", "data-testid": "hvc-why" }, why, li);
    const dl = html("dl", { class: "pkt-fields", "data-testid": "hvc-ret" }, null, li);
    for (const [k, v] of Object.entries(regs)) {
      html("dt", {}, k, dl);
      html("dd", {}, regText(v), dl);
    }
    const effects = en.effects ?? [];
    const ul = html("ul", { class: "hvc-effects", "data-testid": "hvc-effects" }, null, li);
    if (!effects.length) html("li", { class: "hint" }, "caused no event", ul);
    for (const x of effects.slice(0, MAX_EFFECTS_SHOWN)) html("li", {}, `${x.kind} ${summary(x)}`, ul);
    if (effects.length > MAX_EFFECTS_SHOWN) html("li", { class: "hint" }, `… ${effects.length - MAX_EFFECTS_SHOWN} more`, ul);
    return li;
  }
}

function summary(e) {
  const skip = new Set(["seq", "t", "kind"]);
  return Object.entries(e).filter(([k]) => !skip.has(k))
    .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ");
}
