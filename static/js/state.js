// Client mirror of the model: built from a snapshot, kept current by trace events.
// Marks what changed in `dirty` so the diagram updates only those nodes; `structure`
// counts run-time shape changes (VMs, vCPUs, queues, doorbells created or destroyed).
import { memFromSnapshot, foldMem } from "./memmap.js";

// One counter for every mirror: a copy restored from the past never looks "unchanged".
let structureTick = 0;

export class SimState {
  constructor() {
    this.reset(null);
  }

  /** Rebuild from a snapshot (null = empty). Returns true when the structure changed. */
  reset(snap) {
    const oldShape = this.shape;
    this.snap = snap;
    this.vms = new Map();
    this.vcpus = new Map();
    this.msgqs = new Map();
    this.bells = new Map();
    this.virtio = new Map(); // virtio-MMIO devices: registers and each ring's depths
    this.pcpus = [];
    this.capObjects = new Map();
    this.errors = new Map();
    this.dirty = new Set(["all"]);
    this.memory = memFromSnapshot(snap?.memory);
    this.faults = new Map();   // vm -> last stage-2 fault, shown until that VM's next good access
    this.memFlash = new Map(); // vm -> parcel handle a mem.* event just touched
    this.lastRpc = null;       // newest rm.rpc, for the caption by the RM
    this.structure = ++structureTick;
    this.now = snap ? snap.now_ns : 0;
    this.snapSeq = snap ? snap.trace_seq - 1 : -1;
    if (!snap) {
      this.shape = "";
      return oldShape !== "";
    }
    for (const vm of snap.vms) this.addVm(vm);
    for (const q of snap.msgqs) this.msgqs.set(q.name, { ...q, items: q.items.map((i) => ({ ...i })) });
    for (const b of snap.doorbells) this.bells.set(b.name, { ...b });
    for (const v of snap.virtio_mmios ?? []) {
      this.virtio.set(v.name, { ...v, queues: Object.fromEntries((v.queues ?? []).map((q) => [q.queue, { ...q }])) });
    }
    this.pcpus = snap.pcpus.map((p) => ({ pcpu: p.pcpu, current: p.current }));
    this.shape = JSON.stringify([snap.vms.map((v) => [v.name, v.vcpus.length]),
      snap.msgqs.map((q) => [q.name, q.depth]), snap.doorbells.map((b) => b.name), snap.pcpus.length,
      (snap.virtio_mmios ?? []).map((v) => [v.name, v.vqs_num, v.ring_size])]);
    return this.shape !== oldShape;
  }

  addVm(vm) {
    this.vms.set(vm.name, { ...vm, vcpuIds: vm.vcpus.map((v) => v.id),
      virqs: vm.virqs.map((q) => ({ ...q })), capsVersion: 0 });
    for (const v of vm.vcpus) this.vcpus.set(v.id, { ...v });
    this.setCaps(vm.name, vm.caps);
    if (!this.memory.has(vm.name)) this.memory.set(vm.name, []);
  }

  setCaps(name, caps) {
    const vm = this.vms.get(name);
    if (!vm) return;
    for (const key of [...this.capObjects.keys()]) if (key.startsWith(`${name}:`)) this.capObjects.delete(key);
    vm.caps = caps;
    vm.capsVersion++;
    for (const c of caps) this.capObjects.set(`${name}:${c.capid}`, c.object);
  }

  /** The machine's shape now, in snapshot form, for the diagram's layout. */
  structureSnap() {
    return { ...this.snap, vms: [...this.vms.values()].map((vm) => ({ ...vm,
      vcpus: vm.vcpuIds.map((id) => this.vcpus.get(id)).filter(Boolean) })),
    msgqs: [...this.msgqs.values()], doorbells: [...this.bells.values()], pcpus: this.pcpus,
    virtio_mmios: [...this.virtio.values()] };
  }

  /** The queue or doorbell a VM's capid names, e.g. "msgq:A_to_B". */
  objectOf(vm, capid) {
    const obj = this.capObjects.get(`${vm}:${capid}`);
    if (!obj) return null;
    const [type, name] = obj.split(":");
    if (type === "msgqueue") return `msgq:${name}`;
    if (type === "doorbell") return `bell:${name}`;
    return null;
  }

  /** Vcpus that are ready on a pCPU (its run queue, as the lanes show it). */
  runq(pcpu) {
    const out = [];
    for (const v of this.vcpus.values()) if (v.state === "ready" && v.affinity === pcpu) out.push(v.id);
    return out;
  }

  apply(e) {
    if (e.seq <= this.snapSeq) return; // already part of the snapshot
    this.now = e.t;
    const d = this.dirty;
    switch (e.kind) {
      case "msgq.send": {
        const q = this.msgqs.get(e.msgq);
        if (!q) break;
        q.count = e.depth;
        q.items.push({ msg: e.msg, size: e.size, payload: e.payload ?? "", sent_ns: e.t });
        d.add(`msgq:${e.msgq}`);
        break;
      }
      case "msgq.recv": {
        const q = this.msgqs.get(e.msgq);
        if (!q) break;
        q.count = e.depth;
        const at = q.items.findIndex((i) => i.msg === e.msg);
        if (at >= 0) q.items.splice(at, 1);
        d.add(`msgq:${e.msgq}`);
        break;
      }
      case "msgq.flush": {
        const q = this.msgqs.get(e.msgq);
        if (q) { q.count = 0; q.items = []; d.add(`msgq:${e.msgq}`); }
        break;
      }
      case "msgq.config": {
        const q = this.msgqs.get(e.msgq);
        if (q) { q.notempty_thd = e.notempty_thd; q.notfull_thd = e.notfull_thd; d.add(`msgq:${e.msgq}`); }
        break;
      }
      case "bell.send": case "bell.recv": case "bell.mask": case "bell.reset": {
        const b = this.bells.get(e.doorbell);
        if (!b) break;
        b.flags = e.flags;
        if (e.kind === "bell.mask") { b.enable_mask = e.enable_mask; b.ack_mask = e.ack_mask; }
        d.add(`bell:${e.doorbell}`);
        break;
      }
      case "virtio.write": case "virtio.backend": {
        const v = this.virtio.get(e.device);
        if (!v) break;
        Object.assign(v, { status: e.status, reason: e.reason, vqs: e.vqs, isr: e.isr });
        if (e.op === "acknowledge_reset") v.queues = {}; // the rings start again after a reset
        d.add(`virtio:${e.device}`);
        break;
      }
      case "virtq.avail": case "virtq.pop": case "virtq.used": case "virtq.reclaim": {
        const v = this.virtio.get(e.device);
        if (!v) break;
        v.queues[e.queue] = { queue: e.queue, num: e.num, avail_idx: e.avail_idx, used_idx: e.used_idx,
          avail_depth: e.avail_depth, in_device: e.in_device, used_depth: e.used_depth };
        v.last = { kind: e.kind, queue: e.queue, slot: e.slot };
        d.add(`virtio:${e.device}`);
        break;
      }
      case "vcpu.state": {
        const v = this.vcpus.get(e.vcpu);
        if (v) { v.state = e.state; d.add(`vcpu:${e.vcpu}`); d.add("lanes"); }
        break;
      }
      case "vcpu.power": { // PSCI: on, off or suspended (a VM with a vPM group only)
        const v = this.vcpus.get(e.vcpu);
        if (v) { v.power = e.power; d.add(`vcpu:${e.vcpu}`); }
        break;
      }
      case "vtimer.write": case "vtimer.fire": {
        const v = this.vcpus.get(e.vcpu);
        if (v) { v.vtimer = timerAfter(v.vtimer, e); d.add(`vcpu:${e.vcpu}`); }
        break;
      }
      case "vcpu.priority": {
        const v = this.vcpus.get(e.vcpu);
        if (v) { v.priority = e.priority; d.add(`vcpu:${e.vcpu}`); }
        break;
      }
      case "sched.switch": {
        const p = this.pcpus[e.pcpu];
        if (p) { p.current = e.next; d.add("lanes"); }
        break;
      }
      case "vm.state": {
        const vm = this.vms.get(e.vm);
        if (vm && e.state) { vm.state = e.state; d.add(`vm:${e.vm}`); }
        break;
      }
      case "obj.create": case "obj.destroy":
        this.applyObject(e);
        break;
      case "cap.create":
        this.setCaps(e.vm, e.caps ?? []);
        d.add(`vm:${e.vm}`);
        break;
      case "virq.bind": {
        const vm = this.vms.get(e.vm);
        if (vm && !vm.virqs.some((q) => q.virq === e.virq)) {
          vm.virqs.push({ virq: e.virq, source: e.source, trigger: e.trigger, pending: false, active: false });
          d.add(`vm:${e.vm}`);
        }
        break;
      }
      case "sim.snapshot":
        this.applySnapshotEvent(e);
        break;
      case "rm.rpc":
        this.lastRpc = e;
        d.add("rpc");
        break;
      case "mem.fault":
        this.faults.set(e.vm, e);
        d.add(`mem:${e.vm}`);
        break;
      case "mem.page_fault": // no abort: the owner is asked for the page (demand paging)
        this.faults.set(e.vm, e);
        d.add(`mem:${e.vm}`);
        break;
      case "mem.access":
        if (e.ok && this.faults.has(e.vm)) { this.faults.delete(e.vm); d.add(`mem:${e.vm}`); }
        break;
      case "virq.assert": case "virq.deliver": case "virq.eoi": case "virq.clear":
        this.applyVirq(e);
        break;
      case "hvc":
        this.applyHvc(e);
        break;
      case "mem.lend": case "mem.share": case "mem.donate": case "mem.accept": case "mem.release":
      case "mem.reclaim":
        for (const vm of foldMem(this.memory, e)) { d.add(`mem:${vm}`); this.memFlash.set(vm, e.handle); }
        break;
      case "mem.extent_donate": case "mem.map": case "mem.unmap": // demand paging (memmap.js)
        for (const vm of foldMem(this.memory, e)) { d.add(`mem:${vm}`); this.memFlash.set(vm, `pa:${e.pa}`); }
        break;
      default:
        break;
    }
  }

  /** Run-time structure: the RM creating or destroying VMs, vCPUs, queues, doorbells. */
  applyObject(e) {
    const create = e.kind === "obj.create";
    const o = e.object ?? {};
    if (e.type === "vm") {
      if (create) this.addVm({ vcpus: [], caps: [], virqs: [], ...o, name: e.name });
      else {
        const vm = this.vms.get(e.name);
        for (const id of vm?.vcpuIds ?? []) this.vcpus.delete(id);
        this.setCaps(e.name, []);
        this.vms.delete(e.name);
        this.memory.delete(e.name);
        this.faults.delete(e.name);
        for (const key of [...this.errors.keys()]) if (key === `vm:${e.name}`) this.errors.delete(key);
      }
    } else if (e.type === "vcpu") {
      const vm = this.vms.get(e.vm ?? e.name.split(".")[0]);
      if (create) {
        this.vcpus.set(e.name, { ...o, id: e.name });
        if (vm && !vm.vcpuIds.includes(e.name)) vm.vcpuIds.push(e.name);
      } else {
        this.vcpus.delete(e.name);
        if (vm) vm.vcpuIds = vm.vcpuIds.filter((id) => id !== e.name);
      }
    } else if (e.type === "msgq") {
      if (create) this.msgqs.set(e.name, { ...o, items: (o.items ?? []).map((i) => ({ ...i })) });
      else { this.msgqs.delete(e.name); this.errors.delete(`msgq:${e.name}`); }
    } else if (e.type === "doorbell") {
      if (create) this.bells.set(e.name, { ...o });
      else { this.bells.delete(e.name); this.errors.delete(`bell:${e.name}`); }
    } else return;
    this.structure = ++structureTick;
    this.dirty.add("all");
  }

  /** A sim.snapshot trace event: the mirror becomes that state (the VMs' DT text is kept). */
  applySnapshotEvent(e) {
    if (!e.state) return;
    const dts = new Map([...this.vms.values()].map((v) => [v.name, v.dts]));
    const images = this.snap?.images ?? e.scenario?.images ?? [];
    const snap = { ...e.state, scenario: e.scenario ?? this.snap?.scenario, images,
      vms: e.state.vms.map((v) => ({ ...v, dts: v.dts ?? dts.get(v.name) })) };
    this.reset(snap);
  }

  applyVirq(e) {
    const vm = this.vms.get(e.vm);
    const line = vm?.virqs.find((q) => q.virq === e.virq);
    if (!line) return;
    line.pending = e.kind === "virq.assert";
    line.active = e.kind === "virq.deliver";
    this.dirty.add(`vm:${e.vm}`);
  }

  /** Errors stay as badges on the VM (and object) until that VM's same call succeeds. */
  applyHvc(e) {
    const target = this.objectOf(e.vm, e.args?.capid);
    const keys = [`vm:${e.vm}`].concat(target ? [target] : []);
    for (const key of keys) {
      const prev = this.errors.get(key);
      if (e.result !== "OK") {
        const same = prev && prev.code === e.result;
        this.errors.set(key, { code: e.result, name: e.name, vm: e.vm, seq: e.seq,
          count: same ? prev.count + 1 : 1 });
        this.dirty.add(key);
      } else if (prev && prev.name === e.name && prev.vm === e.vm) {
        this.errors.delete(key);
        this.dirty.add(key);
      }
    }
  }

  /** A deep copy for history keyframes; the snapshot it was built from is shared (never mutated). */
  clone() {
    const out = Object.create(SimState.prototype);
    for (const [key, value] of Object.entries(this)) out[key] = key === "snap" ? value : structuredClone(value);
    return out;
  }
}

/** A vCPU's virtual timer after a vtimer.write (the registers the write left) or a
 * vtimer.fire (ISTATUS rose at `t`; the line is up unless IMASK). */
export function timerAfter(timer, e) {
  const t = { ...(timer ?? {}) };
  if (e.kind === "vtimer.write") {
    Object.assign(t, { enable: e.enable, imask: e.imask, cval: e.cval, deadline: e.deadline,
      istatus: e.istatus });
  } else {
    Object.assign(t, { istatus: true, fired: e.t });
  }
  return t;
}
