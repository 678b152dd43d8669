// The Faults menu: one-click faults, each done as Gunyah would do it (an action the
// server checks and records, so links, forks and replays repeat it), and the real answer
// from the trace shown with its caption: CSPACE_CAP_REVOKED, MSGQUEUE_FULL, OBJECT_STATE,
// MEM_INUSE, NOTIFY_VM_EXITED...

import { html } from "./format.js";

const MAX_ANSWERS = 6; // caption lines kept for the last fault
const MAX_RECENT = 400; // events kept in case a fault's answer comes before its ack
const RM_LINK = /(_to_RM|^RM_to_)/; // the RM's own link queues: not offered as targets

const guests = (s) => [...s.vms.values()].filter((v) => v.kind === "guest").map((v) => v.name);
const vms = (s) => [...s.vms.values()].filter((v) => v.kind !== "rm").map((v) => v.name);
const queues = (s) => [...s.msgqs.keys()].filter((n) => !RM_LINK.test(n));
const bells = (s) => [...s.bells.keys()];
const objects = (s) => [...queues(s).map((n) => `msgq:${n}`), ...bells(s).map((n) => `doorbell:${n}`)];
const vcpus = (s) => [...s.vcpus.keys()].filter((id) => !id.startsWith("RM."));

/** {msgq: name} or {doorbell: name} from a picker's "msgq:A_to_B". */
function objectArg(value) {
  const [type, name] = value.split(/:(.*)/s);
  return { [type]: name };
}

/** The capid a vCPU's own VM holds for that vCPU's thread (the RM gave it at creation). */
function threadCap(state, vcpuId) {
  const vm = state.vms.get(state.vcpus.get(vcpuId)?.vm ?? vcpuId.split(".")[0]);
  return vm?.caps?.find((c) => c.type === "THREAD" && c.object === `thread:${vcpuId}`)?.capid;
}

// Each fault: its words, its pickers (name -> options of the current machine, or a
// number), and the action it becomes.
export const FAULTS = [
  { id: "revoke", label: "Revoke a capability",
    line: "The RM revokes every copy of the object's master cap (cspace_revoke_caps_from): each holder's next call gets CSPACE_CAP_REVOKED (51).",
    pick: { object: objects },
    action: (v) => ["fault_revoke", objectArg(v.object)] },
  { id: "flood", label: "Flood a queue",
    line: "The sender's vCPU makes one more msgqueue_send than the queue holds: the last gets MSGQUEUE_FULL.",
    pick: { msgq: queues },
    action: (v, s) => ["fault_flood", { vm: s.msgqs.get(v.msgq)?.sender, msgq: v.msgq }] },
  { id: "unbind", label: "Unbind a vIRQ",
    line: "The RM unbinds the receiver's vIRQ (msgqueue_unbind_receive_virq / doorbell_unbind_virq): the object still works, nobody is interrupted.",
    pick: { object: objects },
    action: (v) => ["fault_unbind", objectArg(v.object)] },
  { id: "mask", label: "Mask a doorbell",
    line: "The receiver calls doorbell_mask with an enable mask of 0: rings set flags but never assert its vIRQ.",
    pick: { doorbell: bells },
    action: (v, s) => ["doorbell_mask", { vm: s.bells.get(v.doorbell)?.receiver, doorbell: v.doorbell,
      enable_mask: 0, ack_mask: 0 }] },
  { id: "priority", label: "Change a vCPU's priority",
    line: "The VM calls vcpu_set_priority on its own vCPU: Gunyah allows it only before the vCPU is activated, so a running one gets OBJECT_STATE.",
    pick: { vcpu: vcpus, priority: "number" },
    action: (v, s) => ["hvc", { vm: s.vcpus.get(v.vcpu)?.vm ?? v.vcpu.split(".")[0], call: "vcpu_set_priority",
      args: { capid: threadCap(s, v.vcpu) ?? 0, priority: Number(v.priority) } }] },
  { id: "force-stop", label: "Force-stop a VM",
    line: "HLOS sends the RM VM_STOP with the force flag: the VM exits and its owner gets NOTIFY_VM_EXITED (VM_STOP_FORCED).",
    pick: { vm: guests },
    action: (v) => ["rm_vm_stop", { vm: v.vm, force: true }] },
  { id: "crash", label: "Crash a VM",
    line: "The VM's vCPUs stop where they stand. Simplified: Gunyah would tell the RM (vcpu halt → EXIT_TYPE_SOFTWARE_ERROR to the owner); here they are only powered off.",
    pick: { vm: vms },
    action: (v) => ["vm_stop", { vm: v.vm }] },
  { id: "reclaim", label: "Reclaim lent memory",
    line: "HLOS asks the RM for MEM_RECLAIM of the image it lent the guest: refused MEM_INUSE while the guest has it accepted.",
    pick: { vm: guests },
    action: (v) => ["rm_mem_reclaim", { vm: v.vm }] },
];

/** Does event `e` answer the fault whose action id is `id`? */
function answers(e, id) {
  if (e.kind === "hvc") return e.action === id;
  if (e.kind === "rm.rpc") return e.stage === "send" && e.dir === "reply";
  return ["cap.revoke", "virq.unbind", "vm.state"].includes(e.kind);
}

export class FaultsMenu {
  /** act(action, args, ev) -> Promise of the ack; state: the SimState mirror. */
  constructor(state, act, button) {
    Object.assign(this, { state, act, root: null, pending: null, answers: [], recent: [] });
    button?.addEventListener("click", () => (this.root && !this.root.hidden ? this.close() : this.open()));
  }

  open() {
    if (!this.root) this.build();
    this.root.hidden = false;
    this.render();
  }

  close() { if (this.root) this.root.hidden = true; }

  build() {
    const r = html("section", { class: "faults-menu", "data-testid": "faults-menu", role: "dialog",
      "aria-label": "Faults" }, null, document.body);
    const head = html("div", { class: "hvc-head" }, null, r);
    html("strong", {}, "Inject a fault", head);
    const x = html("button", { type: "button", class: "small", "data-testid": "faults-close", "aria-label": "Close" }, "×", head);
    x.addEventListener("click", () => this.close());
    html("p", { class: "hint" }, "Each fault is done as Gunyah would do it and recorded with the run; the answer below is the real one.", r);
    this.list = html("ul", { class: "faults-list" }, null, r);
    this.result = html("ol", { class: "hvc-log", "data-testid": "fault-result", "aria-live": "polite" }, null, r);
    this.error = html("p", { class: "result bad", "data-testid": "fault-error", role: "alert" }, "", r);
    r.addEventListener("keydown", (ev) => { if (ev.key === "Escape") this.close(); });
    this.root = r;
  }

  /** Rebuild the pickers from the machine as it is now. */
  render() {
    this.list.replaceChildren(...FAULTS.map((f) => {
      const li = html("li", { "data-testid": `fault-${f.id}` });
      html("strong", {}, f.label, li);
      html("p", { class: "hint" }, f.line, li);
      const values = {};
      const row = html("div", { class: "fault-pickers" }, null, li);
      for (const [name, options] of Object.entries(f.pick)) {
        const label = html("label", {}, `${name} `, row);
        if (options === "number") {
          const input = html("input", { type: "number", min: "0", max: "62", value: "10",
            "data-testid": `fault-${f.id}-${name}` }, null, label);
          values[name] = () => input.value;
        } else {
          const select = html("select", { "data-testid": `fault-${f.id}-${name}` }, null, label);
          for (const o of options(this.state)) html("option", { value: o }, o, select);
          values[name] = () => select.value;
        }
      }
      const go = html("button", { type: "button", class: "small", "data-testid": `fault-${f.id}-go` }, "Inject", row);
      go.addEventListener("click", (ev) => this.inject(f, values, ev));
      return li;
    }));
  }

  async inject(fault, values, ev) {
    const picked = Object.fromEntries(Object.entries(values).map(([k, get]) => [k, get()]));
    if (Object.values(picked).some((v) => v === "")) {
      this.error.textContent = "Nothing to pick: this machine has no such target.";
      return;
    }
    const [action, args] = fault.action(picked, this.state);
    this.error.textContent = "";
    const ack = await this.act(action, args, ev);
    if (!ack.ok) { this.error.textContent = `${ack.error.code}: ${ack.error.message}`; return; }
    this.pending = ack.action_id;
    this.answers = [`${fault.label}: ${action} ${JSON.stringify(args)}`];
    this.renderResult();
    const at = this.recent.findIndex((e) => e.kind === "user.action" && e.id === ack.action_id);
    if (at >= 0) this.take(this.recent.slice(at + 1));
  }

  /** New trace events: keep the captions of those that answer the last fault. */
  ingest(events) {
    this.recent.push(...events);
    if (this.recent.length > MAX_RECENT) this.recent.splice(0, this.recent.length - MAX_RECENT);
    this.take(events);
  }

  take(events) {
    if (this.pending == null) return;
    let changed = false;
    for (const e of events) {
      if (e.kind === "user.action" && e.id > this.pending) { this.pending = null; break; }
      if (!answers(e, this.pending) || this.answers.length > MAX_ANSWERS) continue;
      this.answers.push(e.kind === "hvc" ? `${e.name} → ${e.result}: ${e.caption ?? ""}`
        : (e.caption ?? `${e.kind} #${e.seq}`));
      changed = true;
    }
    if (changed) this.renderResult();
  }

  /** Forget the last answer (a new snapshot: another run, a reset, a rewind). */
  reset() {
    this.pending = null;
    this.answers = [];
    this.recent = [];
    if (this.root) { this.renderResult(); if (!this.root.hidden) this.render(); }
  }

  renderResult() {
    this.result.replaceChildren(...this.answers.map((t) => html("li", {}, t)));
  }
}
