// Inspector: the selected VM (RM state, lifecycle buttons, vCPUs, capabilities, vIRQs,
// memory map, device tree, and buttons that make that VM issue hypercalls), message queue
// / doorbell (contents and thresholds), or one RM packet decoded.
import { html, hex, fmtTime } from "./format.js";
import { rmLifecycle, powerControls, dtsDetails } from "./lifecycle.js";
import { memSection } from "./memmap.js";
import { renderPackets, isRmQueue } from "./rmpacket.js";

const REFRESH_MS = 200;
const PAYLOAD_PREVIEW = 28;
const DEFAULT_SIZE = 16;
const DEFAULT_PAYLOAD = "hello";

function table(parent, heads, testid) {
  const t = html("table", { class: "grid", "data-testid": testid }, null, parent);
  const tr = html("tr", {}, null, html("thead", {}, null, t));
  for (const h of heads) html("th", {}, h, tr);
  return html("tbody", {}, null, t);
}
function fillRows(tbody, rows) {
  const key = JSON.stringify(rows);
  if (tbody.__rows === key) return; // unchanged: no DOM work
  tbody.__rows = key;
  tbody.replaceChildren(...rows.map((cells) => {
    const tr = html("tr");
    for (const c of cells) html("td", {}, String(c), tr);
    if (tbody.classList.contains("clickable")) { // a row that acts on click: also by keyboard
      tr.tabIndex = 0;
      tr.setAttribute("role", "button");
      tr.setAttribute("aria-label", `message ${cells.slice(0, 2).join(" · id ")}: decode its RM packet`);
    }
    return tr;
  }));
}
function field(parent, label, input) {
  const l = html("label", { class: "field" }, null, parent);
  html("span", {}, label, l);
  l.appendChild(input);
  return input;
}
const isRmLink = (cap) => /(^|_)RM(_|$)/.test(cap.object.split(":")[1] ?? "");

function select(options, testid) {
  const s = html("select", { "data-testid": testid });
  for (const [value, label] of options) html("option", { value }, label, s);
  return s;
}
function button(parent, label, testid, onClick, cls = "") {
  const b = html("button", { type: "button", "data-testid": testid, class: cls }, label, parent);
  b.addEventListener("click", onClick);
  return b;
}

const INTEGER = /^(0x[0-9a-f]+|[0-9]+)$/i;
/** An integer field as typed (decimal or 0x-hex), or an error naming it: never NaN sent as 0. */
function intOf(input, name) {
  const text = input.value.trim();
  const value = INTEGER.test(text) ? Number(text) : NaN;
  const lo = input.min === "" ? 0 : Number(input.min);
  const hi = input.max === "" ? Number.MAX_SAFE_INTEGER : Number(input.max);
  const ok = Number.isSafeInteger(value) && value >= lo && value <= hi;
  input.setAttribute("aria-invalid", String(!ok));
  if (ok) return { value };
  const range = input.max === "" ? " (decimal or 0x-hex)" : ` ${lo}..${hi}`;
  return { error: `${name} ${JSON.stringify(input.value)} is not an integer${range}: not sent` };
}

export class Inspector {
  /** act(action, args, originEvent) -> Promise of the ack; opts: {packets, fetchDts}. */
  constructor(root, state, act, opts = {}) {
    Object.assign(this, { root, state, act, packets: opts.packets ?? null, fetchDts: opts.fetchDts ?? null });
    this.sel = null;
    this.live = () => {};
    this.lastRefresh = 0;
  }

  clear() {
    this.sel = null;
    this.root.replaceChildren();
    const sc = this.state.snap?.scenario;
    if (sc?.description) { // what this scenario shows, for whoever is watching
      html("h2", { "data-testid": "about-title" }, sc.title ?? sc.name, this.root);
      html("p", { class: "about", "data-testid": "about-text" }, sc.description, this.root);
    }
    html("p", { class: "hint" },
      "Click a VM, a message queue or a doorbell to inspect it and act as that VM.", this.root);
  }

  show(sel) {
    this.sel = sel;
    this.root.replaceChildren();
    if (sel.type === "vm") this.showVm(sel.name);
    else if (sel.type === "packet") this.showPacket(sel);
    else if (sel.type === "msgq") this.showMsgq(sel.name);
    else this.showBell(sel.name);
    this.live();
  }

  /** Re-draw the live parts (called every frame; throttled). */
  refresh(now = performance.now()) {
    if (!this.sel || now - this.lastRefresh < REFRESH_MS) return;
    this.lastRefresh = now;
    this.live();
  }

  /** Run `action` with `args`, whose integer fields are {input, name} until parsed here. */
  async run(action, args, ev) {
    for (const [key, v] of Object.entries(args)) {
      if (!(v?.input instanceof HTMLInputElement)) continue;
      const parsed = intOf(v.input, v.name);
      if (parsed.error) {
        this.awaiting = null;
        this.result.className = "result bad";
        this.result.dataset.outcome = "refused";
        this.result.textContent = parsed.error;
        v.input.focus();
        return;
      }
      args = { ...args, [key]: parsed.value };
    }
    delete this.result.dataset.outcome;
    this.result.textContent = `${action}…`;
    const ack = await this.act(action, args, ev);
    this.result.className = ack.ok ? "result ok" : "result bad";
    this.result.textContent = ack.ok
      ? `queued as action #${ack.action_id}${ack.hvc ? ` (${ack.hvc} on ${ack.vcpu})` : ""}: step or play to see it run`
      : `${ack.error.code}: ${ack.error.message}`;
    this.awaiting = ack.ok && ack.hvc ? { id: ack.action_id, el: this.result } : null;
  }

  /** A queued hypercall has run: say whether it succeeded or failed, where it was queued. */
  outcome(events) {
    const w = this.awaiting;
    if (!w) return;
    const e = events.find((x) => x.kind === "hvc" && x.action === w.id);
    if (!e) return;
    this.awaiting = null;
    const ok = e.result === "OK";
    w.el.className = ok ? "result ok" : "result bad";
    w.el.dataset.outcome = ok ? "ok" : "failed";
    w.el.textContent = ok ? `action #${w.id} ran: ${e.name} on ${e.vcpu} returned OK`
      : `action #${w.id} failed: ${e.name} on ${e.vcpu} returned ${e.result}`;
  }

  /** One RM packet (sel.packets) as a protocol analyser shows it. */
  showPacket(sel) {
    renderPackets(this.root, sel.packets, sel.title);
  }

  /** Show the RM packet(s) behind a log event or queued message; false if it is none. */
  showPacketOf(e) {
    const packets = this.packets?.packetsFor(e, this.state);
    if (!packets?.length && e.kind === "rm.rpc") { // reported before its packet left the RM
      this.sel = { type: "packet", packets: [] };
      this.root.replaceChildren();
      html("h2", { "data-testid": "insp-title" }, `RM ${e.dir}: ${e.name} #${e.rpc_seq}`, this.root);
      html("p", { class: "sub", "data-testid": "pkt-pending" }, `${e.src} → ${e.dst}: its packet is not on ` +
        "the RM link yet (or was sent before this page loaded). Step on, then click its msgq.send.", this.root);
      this.live = () => {};
      return true;
    }
    if (!packets?.length) return false;
    this.show({ type: "packet", packets, title: e.kind === "rm.rpc"
      ? `RM ${e.dir}: ${e.name} #${e.rpc_seq}` : null });
    return true;
  }

  showVm(name) {
    const vm = this.state.vms.get(name);
    if (!vm) return this.clear();
    const r = this.root;
    const head = html("div", { class: "insp-head" }, null, r);
    html("h2", { "data-testid": "insp-title" }, `${name}`, head);
    const badge = html("span", { class: "state-pill", "data-testid": "insp-vm-state" }, null, head);
    const info = html("p", { class: "sub" }, null, r);
    rmLifecycle(r, vm, this.state.snap?.images ?? [], (action, args, ev) => this.run(action, args, ev));
    this.vmActions(vm);
    const mem = memSection(r);
    html("h3", {}, "vCPUs", r);
    const vcpus = table(r, ["vCPU", "state", "prio", "pCPU"], "insp-vcpus");
    html("h3", {}, "Bound vIRQs", r);
    const virqs = table(r, ["vIRQ", "source", "state"], "insp-virqs");
    html("h3", {}, "Capabilities (CSpace)", r);
    const caps = table(r, ["capid", "object", "rights"], "insp-caps");
    dtsDetails(r, vm, this.fetchDts);
    const capsVersion = vm.capsVersion;
    this.live = () => {
      const v = this.state.vms.get(name);
      if (!v) {
        info.textContent = `${name} no longer exists: the RM destroyed it (VM_DEALLOCATE).`;
        badge.textContent = "gone";
        return;
      }
      if (v.capsVersion !== capsVersion) { this.show(this.sel); return; } // new caps: new forms
      badge.textContent = v.state;
      badge.className = `state-pill rs-${v.state}`;
      info.textContent = `${v.kind} VM · vmid ${v.vmid} · RM state ${v.state} · program ${v.program ?? v.image ?? "–"}`;
      mem(this.state.memory.get(name));
      fillRows(caps, v.caps.map((c) => [hex(c.capid), c.object, c.rights_names.join(" ")]));
      fillRows(vcpus, v.vcpuIds.map((id) => this.state.vcpus.get(id))
        .map((c) => [c.id, c.power ? `${c.state} · power ${c.power}` : c.state, c.priority, c.affinity]));
      fillRows(virqs, v.virqs.map((q) => [q.virq, q.source,
        q.pending ? "pending" : q.active ? "active" : "idle"]));
    };
  }

  vmActions(vm) {
    this.result = html("p", { class: "result", "data-testid": "act-result", role: "status" }, "", this.root);
    const box = html("div", { class: "actions" }, null, this.root);
    html("h3", {}, `Act as ${vm.name} (its vCPU 0 makes the hypercall)`, box);
    if (this.openConsole) button(box, "hypercall console…", "act-console", () => this.openConsole(vm.name));
    // Queues it may send on first, the RM link (raw RPC packets) last.
    const rank = (c) => (c.rights_names.includes("SEND") ? 0 : 1) + (isRmLink(c) ? 2 : 0);
    const queues = vm.caps.filter((c) => c.type === "MSGQUEUE")
      .sort((a, b) => rank(a) - rank(b))
      .map((c) => { const q = c.object.split(":")[1]; return [q, `${q} (${c.rights_names.join("+")})`]; });
    if (queues.length) {
      const f = html("div", { class: "form" }, null, box);
      const q = field(f, "queue", select(queues, "act-msgq"));
      const size = field(f, "size", html("input", { type: "number", min: 0, max: 1024, value: DEFAULT_SIZE,
        "data-testid": "act-size" }));
      const payload = field(f, "payload", html("input", { type: "text", value: DEFAULT_PAYLOAD,
        "data-testid": "act-payload" }));
      const push = field(f, "PUSH", html("input", { type: "checkbox", "data-testid": "act-push" }));
      push.checked = true;
      button(f, "msgqueue_send", "act-send", (ev) => this.run("msgq_send", { vm: vm.name, msgq: q.value,
        size: { input: size, name: "size" }, payload: payload.value, push: push.checked }, ev), "primary");
      button(f, "msgqueue_receive", "act-recv", (ev) => this.run("msgq_receive",
        { vm: vm.name, msgq: q.value }, ev));
    }
    const bells = vm.caps.filter((c) => c.type === "DOORBELL").map((c) => c.object.split(":")[1]);
    if (bells.length) {
      const f = html("div", { class: "form" }, null, box);
      const b = field(f, "doorbell", select(bells.map((n) => [n, n]), "act-bell"));
      const flags = field(f, "flags", html("input", { type: "text", value: "0x1", size: 8,
        "data-testid": "act-flags" }));
      button(f, "doorbell_send", "act-ring", (ev) => this.run("doorbell_send",
        { vm: vm.name, doorbell: b.value, flags: { input: flags, name: "flags" } }, ev), "primary");
      button(f, "doorbell_receive", "act-bell-recv", (ev) => this.run("doorbell_receive",
        { vm: vm.name, doorbell: b.value }, ev));
    }
    if (vm.vcpuIds.length) {
      const f = html("div", { class: "form" }, null, box);
      const vcpu = field(f, "vCPU", select(vm.vcpuIds.map((id) => [id, id]), "act-vcpu"));
      const prio = field(f, "priority", html("input", { type: "number", min: 0, max: 63,
        value: this.state.vcpus.get(vm.vcpuIds[0])?.priority ?? 32, "data-testid": "act-prio" }));
      button(f, "set priority", "act-priority", (ev) => this.run("set_priority",
        { vcpu: vcpu.value, priority: { input: prio, name: "priority" } }, ev));
    }
    powerControls(box, vm, (action, args, ev) => this.run(action, args, ev));
  }

  showMsgq(name) {
    const q0 = this.state.msgqs.get(name);
    if (!q0) return this.clear();
    const r = this.root;
    html("h2", { "data-testid": "insp-title" }, `Message queue ${name}`, r);
    html("p", { class: "sub" }, `${q0.sender} → ${q0.receiver} · max message ${q0.max_size} B · ` +
      `Rx vIRQ ${q0.rx_virq} to ${q0.receiver} · Tx vIRQ ${q0.tx_virq} to ${q0.sender}`, r);
    const stats = html("p", { class: "big", "data-testid": "insp-count" }, null, r);
    const thd = html("p", { class: "sub" }, null, r);
    html("h3", {}, "Contents (oldest first)", r);
    const items = table(r, ["#", "msg id", "size", "payload", "sent at"], "insp-items");
    if (isRmQueue(name)) {
      html("p", { class: "hint" }, "RM link: click a message to decode its RM packet.", r);
      items.classList.add("clickable");
      items.addEventListener("click", (ev) => {
        const row = ev.target.closest("tr");
        const msg = this.state.msgqs.get(name)?.items[[...items.children].indexOf(row)]?.msg;
        if (msg != null) this.showPacketOf({ kind: "msgq.send", msgq: name, msg });
      });
      items.addEventListener("keydown", (ev) => {
        if ((ev.key === "Enter" || ev.key === " ") && ev.target.matches("tr")) {
          ev.preventDefault();
          ev.stopPropagation(); // not also play / pause
          ev.target.click();
        }
      });
    }
    const box = html("div", { class: "form actions" }, null, r);
    button(box, `send as ${q0.sender}`, "act-send-q", (ev) => this.run("msgq_send",
      { vm: q0.sender, msgq: name, size: DEFAULT_SIZE, payload: DEFAULT_PAYLOAD, push: true }, ev), "primary");
    button(box, `receive as ${q0.receiver}`, "act-recv-q", (ev) => this.run("msgq_receive",
      { vm: q0.receiver, msgq: name }, ev));
    this.result = html("p", { class: "result", "data-testid": "act-result", role: "status" }, "", box);
    this.live = () => {
      const q = this.state.msgqs.get(name);
      if (!q) return;
      stats.textContent = `${q.count} of ${q.depth} slots used`;
      thd.textContent = `notempty_thd ${q.notempty_thd} (Rx vIRQ when count reaches it) · ` +
        `notfull_thd ${q.notfull_thd} (Tx vIRQ when count falls to it)`;
      fillRows(items, q.items.map((it, i) => [i + 1, it.msg, `${it.size} B`,
        String(it.payload ?? "").slice(0, PAYLOAD_PREVIEW), fmtTime(it.sent_ns)]));
    };
  }

  showBell(name) {
    const b0 = this.state.bells.get(name);
    if (!b0) return this.clear();
    const r = this.root;
    html("h2", { "data-testid": "insp-title" }, `Doorbell ${name}`, r);
    html("p", { class: "sub" }, `${b0.sender} → ${b0.receiver} · vIRQ ${b0.virq}`, r);
    const flags = html("p", { class: "big" }, null, r);
    const masks = html("p", { class: "sub" }, null, r);
    const box = html("div", { class: "form actions" }, null, r);
    button(box, `ring as ${b0.sender} (0x1)`, "act-ring-b", (ev) => this.run("doorbell_send",
      { vm: b0.sender, doorbell: name, flags: 1 }, ev), "primary");
    button(box, `receive as ${b0.receiver}`, "act-bell-recv-b", (ev) => this.run("doorbell_receive",
      { vm: b0.receiver, doorbell: name }, ev));
    this.result = html("p", { class: "result", "data-testid": "act-result", role: "status" }, "", box);
    this.live = () => {
      const b = this.state.bells.get(name);
      flags.textContent = `flags ${hex(b.flags)}`;
      masks.textContent = `enable_mask ${hex(b.enable_mask)} · ack_mask ${hex(b.ack_mask)}`;
    };
  }
}
