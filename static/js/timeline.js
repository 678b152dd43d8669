// Event log: every revealed trace event, filterable by area and by VM. Clicking an
// entry shows its fields and asks the diagram to highlight what it concerns.
import { html, fmtTime, summarize } from "./format.js";
import { captionOf } from "./caption.js";

const KEEP_EVENTS = 20000;   // events kept for re-filtering
const MAX_ROWS = 400;        // rows in the DOM at once
const WINDOW_ROWS = 120;     // rows listed around an event the view jumped to (cheap to rebuild)
const MAX_ROWS_PER_FLUSH = 40; // rows added per refresh: beyond this nobody can read them anyway
const FLOOD_FLUSH_MS = 200;
const FLOOD_EVENTS = 500;    // more than this waiting at once is a flood, not a lesson
const AREAS = [
  ["msgq", "msgq"], ["bell", "doorbell"], ["virq", "vIRQ"], ["sched", "sched"],
  ["hvc", "hvc"], ["rm", "RM"], ["mem", "mem"], ["virtio", "virtio"], ["other", "other"],
];
const AREA_OF = { msgq: "msgq", bell: "bell", virq: "virq", sched: "sched", vcpu: "sched",
  hvc: "hvc", rm: "rm", mem: "mem", virtio: "virtio", virtq: "virtio" };

export function areaOf(kind) { return AREA_OF[kind.split(".")[0]] ?? "other"; }

/** VMs an event concerns, from its fields (vm, src, dst, vcpu ids, prev/next). */
export function vmsOf(e) {
  const out = new Set();
  for (const k of ["vm", "src", "dst"]) if (typeof e[k] === "string") out.add(e[k]);
  for (const k of ["vcpu", "prev", "next"]) if (typeof e[k] === "string") out.add(e[k].split(".")[0]);
  if (e.kind === "user.action" && e.args?.vm) out.add(e.args.vm);
  return out;
}

/** Diagram keys an event concerns ("vm:X", "msgq:Q", "bell:B", link keys). */
export function keysOf(e) {
  const keys = [...vmsOf(e)].map((v) => `vm:${v}`);
  if (e.msgq) keys.push(`msgq:${e.msgq}`);
  if (e.doorbell) keys.push(`bell:${e.doorbell}`);
  if (typeof e.device === "string") keys.push(`virtio:${e.device}`);
  if (typeof e.source === "string") {
    const [type, name, role] = e.source.split(":");
    keys.push(type === "doorbell" ? `bell:${name}` : type === "virtio_mmio" ? `virtio:${name}` : `${type}:${name}`);
    if (role) keys.push(`${type}:${name}:${role}`);
  }
  return keys;
}

export class Timeline {
  constructor({ list, detail, filters, vmSelect, count }) {
    Object.assign(this, { list, detail, filters, vmSelect, countEl: count });
    this.events = [];
    this.pending = [];
    this.skipped = 0;
    this.lastFlush = 0;
    this.areas = new Set(AREAS.map(([a]) => a));
    this.vm = "";
    this.selected = null;
    this.onSelect = () => {};
    this.onGoto = () => {};  // the viewer asked to move the diagram to the selected event
    this.follow = true;      // rows follow the head; false while the view is in the past
    this.windowed = false;   // rows show a window around a past event, not the tail
    this.lookup = () => null;
    this.bootSeq = -1;       // the boot's last event (revealed at load): its rows fold into one
    this.bootOpen = false;
    this.explain = null; // (event) -> Promise<{caption, real, fields}> from the server // seq -> event, for rows older than the kept events
    for (const [area, label] of AREAS) {
      const lab = html("label", { class: `chip-filter a-${area}` }, null, filters);
      const box = html("input", { type: "checkbox", "data-testid": `filter-${area}` }, null, lab);
      box.checked = true;
      lab.append(` ${label}`);
      box.addEventListener("change", () => {
        if (box.checked) this.areas.add(area); else this.areas.delete(area);
        this.rerender();
      });
    }
    vmSelect.addEventListener("change", () => { this.vm = vmSelect.value; this.rerender(); });
    list.addEventListener("click", (ev) => {
      if (ev.target.closest("[data-testid=log-boot]")) { this.openBoot(!this.bootOpen); return; }
      const row = ev.target.closest("li[data-seq]");
      if (row) this.select(Number(row.dataset.seq));
    });
    // Keyboard: the log is one tab stop; up and down choose the event (as a click does).
    list.tabIndex = 0;
    list.setAttribute("aria-label", "Event log: up and down arrows choose an event");
    list.addEventListener("keydown", (ev) => {
      const rows = { ArrowUp: -1, ArrowDown: 1, Home: -Infinity, End: Infinity };
      if (!(ev.key in rows) || ev.altKey || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
      ev.preventDefault();
      ev.stopPropagation(); // not also a step or a pan
      const all = [...list.querySelectorAll("li[data-seq]:not([hidden])")];
      if (!all.length) return;
      const at = all.findIndex((li) => li.classList.contains("sel"));
      const step = rows[ev.key];
      const i = Math.abs(step) === Infinity ? (step < 0 ? 0 : all.length - 1)
        : at < 0 ? all.length - 1 : Math.max(0, Math.min(all.length - 1, at + step));
      this.select(Number(all[i].dataset.seq));
      all[i].scrollIntoView({ block: "nearest" });
    });
    list.addEventListener("dblclick", (ev) => { // a double click also goes there
      const row = ev.target.closest("li[data-seq]");
      const e = row && (this.events.find((x) => x.seq === Number(row.dataset.seq)) ?? this.lookup(Number(row.dataset.seq)));
      if (e) this.onGoto(e);
    });
  }

  setVms(names) {
    this.vmSelect.replaceChildren(html("option", { value: "" }, "all"));
    for (const n of names) html("option", { value: n }, n, this.vmSelect);
    this.vm = "";
  }

  /** The boot (seq 0 .. bootSeq) shows as one folded "boot: N events" row until opened. */
  setBoot(seq) {
    this.bootSeq = seq ?? -1;
    this.bootOpen = false;
  }

  openBoot(open) {
    this.bootOpen = open;
    const head = this.list.querySelector("[data-testid=log-boot]");
    if (head) {
      head.setAttribute("aria-expanded", String(open));
      head.firstChild.textContent = open ? "▾" : "▸";
    }
    for (const li of this.list.querySelectorAll("li.boot")) li.hidden = !open;
    this.updateCount();
  }

  /** The folded boot's heading row: how many events, over which simulated time. */
  bootHead() {
    const last = this.lookup(this.bootSeq) ?? this.events.find((e) => e.seq === this.bootSeq);
    const li = html("li", { class: "boot-group", "data-testid": "log-boot", role: "button", tabindex: "0",
      "aria-expanded": String(this.bootOpen),
      title: "The machine as the scenario builds it, and its vCPUs settling: click to list these events" });
    html("span", { class: "l-fold" }, this.bootOpen ? "▾" : "▸", li);
    html("span", { class: "l-kind" }, `boot: ${this.bootSeq + 1} events`, li);
    html("span", { class: "l-sum" }, ` · t = 0 – ${fmtTime(last?.t ?? 0)} · built, vCPUs settled`, li);
    li.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); ev.stopPropagation(); this.openBoot(!this.bootOpen); }
    });
    return li;
  }

  clear() {
    this.events = []; this.pending = []; this.selected = null; this.skipped = 0;
    this.list.replaceChildren();
    this.detail.replaceChildren(html("p", { class: "hint" }, "Click an event to see its fields."));
    this.updateCount();
  }

  push(events) {
    for (const e of events) this.events.push(e);
    for (const e of events) this.pending.push(e);
    if (this.events.length > KEEP_EVENTS * 1.25) this.events.splice(0, this.events.length - KEEP_EVENTS);
  }

  visible(e) {
    return this.areas.has(areaOf(e.kind)) && (!this.vm || vmsOf(e).has(this.vm));
  }

  /** Append the rows of events pushed since the last frame (at most MAX_ROWS). */
  flush(now = performance.now()) {
    if (!this.pending.length) {
      // The stream stopped (a Step N, a pause): the rows a flood passed over are listed
      // now that they can be read, so the log again holds every event kept.
      if (this.flooding && now - this.lastFlush >= FLOOD_FLUSH_MS) {
        this.flooding = false;
        if (this.skipped && this.follow) { this.skipped = 0; this.rerender(); this.updateCount(); }
      }
      return;
    }
    if (!this.follow) { this.pending = []; return; } // the view is in the past: rows stay put
    // Under a flood the log refreshes a few times a second: nobody reads 60 pages a second.
    // A flood is a big batch, or more rows than one refresh lists arriving frame after
    // frame (playing fast): then hundreds of rows made and dropped per frame cost the frame.
    const many = this.pending.length > MAX_ROWS_PER_FLUSH;
    const flood = this.pending.length > FLOOD_EVENTS
      || (many && (this.flooding || now - this.lastFlush < FLOOD_FLUSH_MS));
    this.flooding = flood;
    if (flood && now - this.lastFlush < FLOOD_FLUSH_MS) return;
    this.lastFlush = now;
    const cap = flood ? MAX_ROWS_PER_FLUSH : MAX_ROWS;
    const rows = [];
    for (let i = this.pending.length - 1; i >= 0 && rows.length < cap; i--) {
      if (this.visible(this.pending[i])) rows.push(this.pending[i]);
    }
    this.skipped += this.pending.filter((e) => this.visible(e)).length - rows.length;
    this.pending = [];
    this.append(rows.reverse());
  }

  rerender() {
    this.list.replaceChildren();
    this.pending = [];
    this.windowed = false;
    this.append(this.events.filter((e) => this.visible(e)).slice(-MAX_ROWS));
  }

  append(rows) {
    const atEnd = this.list.scrollTop + this.list.clientHeight >= this.list.scrollHeight - 40;
    const frag = document.createDocumentFragment();
    let head = this.list.querySelector("[data-testid=log-boot]");
    for (const e of rows) {
      if (e.seq <= this.bootSeq && !head) { head = this.bootHead(); frag.appendChild(head); }
      frag.appendChild(this.row(e));
    }
    this.list.appendChild(frag);
    let extra = this.list.childElementCount - MAX_ROWS;
    while (extra-- > 0) this.list.firstElementChild.remove();
    const first = this.list.firstElementChild;
    if (first?.classList.contains("boot-group") && !first.nextElementSibling?.classList.contains("boot")) first.remove();
    if (atEnd) this.list.scrollTop = this.list.scrollHeight;
    this.updateCount();
  }

  row(e) {
    const err = e.kind === "hvc" && e.result !== "OK";
    const boot = e.seq <= this.bootSeq;
    const li = html("li", { "data-seq": e.seq, "data-kind": e.kind, "data-testid": "log-entry",
      ...(e.msg != null ? { "data-msg": e.msg } : {}), ...(e.msgq ? { "data-queue": e.msgq } : {}),
      class: `a-${areaOf(e.kind)}${err ? " err" : ""}${e.seq === this.selected ? " sel" : ""}${boot ? " boot" : ""}` });
    if (boot && !this.bootOpen) li.hidden = true;
    html("span", { class: "l-seq" }, `#${e.seq}`, li);
    html("span", { class: "l-t" }, fmtTime(e.t), li);
    html("span", { class: "l-kind" }, e.kind, li);
    // The sentence first; the compact fields after it, muted, for those who read them.
    const sum = html("span", { class: "l-sum", title: `${captionOf(e)}\n${summarize(e)}` }, null, li);
    html("span", { class: "l-cap" }, e.caption ?? "", sum); // null: a flood's, too fast to read
    html("span", { class: "l-raw" }, `${e.caption ? " · " : ""}${summarize(e)}`, sum);
    return li;
  }

  updateCount() {
    const skipped = this.skipped ? ` · ${this.skipped.toLocaleString("en")} passed too fast to list` : "";
    const rows = this.list.querySelectorAll("li[data-seq]:not([hidden])").length;
    this.countEl.textContent = `${rows} shown · ${this.events.length} kept${skipped}`;
  }

  select(seq) {
    const e = this.events.find((x) => x.seq === seq) ?? this.lookup(seq);
    if (!e) return;
    this.selected = seq;
    for (const li of this.list.querySelectorAll("li.sel")) li.classList.remove("sel");
    if (seq <= this.bootSeq && !this.bootOpen) this.openBoot(true); // a boot event chosen: list the boot
    this.list.querySelector(`li[data-seq="${seq}"]`)?.classList.add("sel");
    const dl = html("dl", { class: "fields" });
    for (const [k, v] of Object.entries(e)) {
      if (k === "caption") continue;
      html("dt", {}, k, dl);
      html("dd", {}, typeof v === "object" && v !== null ? JSON.stringify(v, null, 1) : String(v), dl);
    }
    const cap = html("p", { class: "ev-caption", "data-testid": "event-caption" }, captionOf(e));
    this.detail.replaceChildren(...this.heading(e), cap, dl);
    this.onSelect(e, keysOf(e));
    this.explainInto(e);
  }

  /** Replace the raw fields with the server's reading of them (captions.explain). */
  async explainInto(e) {
    const info = this.explain ? await this.explain(e) : null;
    if (info && e.caption == null) e.caption = info.caption;
    if (!info || this.selected !== e.seq) return;
    const dl = html("dl", { class: "fields", "data-testid": "event-fields" });
    for (const [k, text] of info.fields) { html("dt", {}, k, dl); html("dd", {}, text, dl); }
    const cap = html("p", { class: "ev-caption", "data-testid": "event-caption" }, info.caption);
    const real = html("p", { class: "ev-real", "data-testid": "event-real" }, "");
    html("b", {}, "Real Gunyah: ", real);
    real.append(info.real);
    this.detail.replaceChildren(...this.heading(e), cap, real, dl);
  }

  /** The detail's title and its "go to" button: selecting explains, only this moves the diagram. */
  heading(e) {
    const go = html("button", { type: "button", class: "log-goto", "data-testid": "log-goto",
      title: "Show the diagram as it was at this event (or double-click the row)" }, `Go to #${e.seq}`);
    go.addEventListener("click", () => this.onGoto(e));
    return [html("h3", {}, `${e.kind} #${e.seq}`), go];
  }

  /** Mark the row of the event the view stands on; list the rows around it when it is not listed.
   * `around(seq, n)` gives the events near seq (from the full history). */
  markView(seq, around) {
    for (const li of this.list.querySelectorAll("li.at")) li.classList.remove("at");
    let li = this.list.querySelector(`li[data-seq="${seq}"]`);
    if (!li && around) {
      this.list.replaceChildren();
      this.pending = [];
      this.append(around(seq, WINDOW_ROWS).filter((e) => this.visible(e)));
      this.windowed = true;
      li = this.list.querySelector(`li[data-seq="${seq}"]`);
    }
    this.viewSeq = seq;
    if (!li) return;
    if (li.hidden) this.openBoot(true); // the view went back into the boot: show where
    li.classList.add("at");
    const top = li.getBoundingClientRect().top - this.list.getBoundingClientRect().top + this.list.scrollTop;
    if (top < this.list.scrollTop || top > this.list.scrollTop + this.list.clientHeight - li.offsetHeight) {
      this.list.scrollTop = top - this.list.clientHeight / 2;
    }
  }

  /** Rows follow the head again (the view went live). */
  followHead() {
    this.follow = true;
    for (const li of this.list.querySelectorAll("li.at")) li.classList.remove("at");
    if (this.windowed || this.pending.length) this.rerender();
  }

  /** Forget events after `seq` (a fork dropped that future). */
  truncate(seq) {
    this.events = this.events.filter((e) => e.seq <= seq);
    this.pending = this.pending.filter((e) => e.seq <= seq);
    for (const li of [...this.list.querySelectorAll("li[data-seq]")]) if (Number(li.dataset.seq) > seq) li.remove();
    if (this.selected > seq) this.selected = null;
    this.updateCount();
  }

  /** Seq numbers of the rows now in the log (for tests and exports checks). */
  shownSeqs() { return [...this.list.querySelectorAll("li[data-seq]:not([hidden])")].map((li) => Number(li.dataset.seq)); }
}
