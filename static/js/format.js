// Formatting and DOM helpers shared by the view modules: simulated time, speed, flags.

export const SVG_NS = "http://www.w3.org/2000/svg";
const NS_PER_US = 1e3;
const NS_PER_MS = 1e6;
const NS_PER_S = 1e9;
const SPEED_DIGITS = 2;
// Above 2^53 a JSON number has lost its low bits; Gunyah's all-ones 64-bit masks land here.
const EXACT_INT_LIMIT = 2 ** 53;

/** Simulated nanoseconds as the unit a person reads best (ns, µs, ms, s). */
export function fmtTime(ns) {
  if (ns == null || !Number.isFinite(ns)) return "–";
  if (ns < NS_PER_US) return `${Math.round(ns)} ns`;
  if (ns < NS_PER_MS) return `${(ns / NS_PER_US).toFixed(3)} µs`;
  if (ns < NS_PER_S) return `${(ns / NS_PER_MS).toFixed(3)} ms`;
  return `${(ns / NS_PER_S).toFixed(3)} s`;
}

/** Speed (simulated seconds per wall second, or "max") as "2 µs/s". */
export function fmtSpeed(speed) {
  if (speed === "max") return "max";
  if (speed == null) return "–";
  const ns = speed * NS_PER_S;
  const [unit, name] = ns < NS_PER_US ? [1, "ns"] : ns < NS_PER_MS ? [NS_PER_US, "µs"]
    : ns < NS_PER_S ? [NS_PER_MS, "ms"] : [NS_PER_S, "s"];
  const value = Number((ns / unit).toPrecision(SPEED_DIGITS));
  return `${value} ${name}/s${ns === NS_PER_S ? " (real time)" : ""}`;
}

export function hex(n) {
  if (typeof n !== "number") return String(n);
  return n >= EXACT_INT_LIMIT ? "0xffffffffffffffff" : `0x${n.toString(16)}`;
}

/** A 64-bit mask for display: "all" when every bit is set (as Gunyah's default enable_mask). */
export function hexMask(n) {
  return typeof n === "number" && n >= EXACT_INT_LIMIT ? "all" : hex(n);
}

/** Bit `bit` of a 64-bit flag word carried as a JSON number. */
export function flagBit(word, bit) {
  if (word >= EXACT_INT_LIMIT) return true; // only all-ones masks are this large in practice
  return Math.floor(word / 2 ** bit) % 2 === 1;
}

export function svg(tag, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

/** Update a node's text / attribute only when it changed (frames touch only what moved). */
export function setText(node, text) {
  if (node.__text !== text) { node.textContent = text; node.__text = text; }
}
export function setAttr(node, name, value) {
  const key = `__${name}`;
  if (node[key] !== value) { node.setAttribute(name, value); node[key] = value; }
}
export function svgText(parent, x, y, content, cls, anchor = "start") {
  const t = svg("text", { x, y, class: cls, "text-anchor": anchor }, parent);
  t.textContent = content;
  return t;
}

export function html(tag, attrs = {}, text = null, parent = null) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  if (text != null) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

// Return registers not worth a log line: the failure text and an RM packet's bytes.
const HVC_RET_HIDDEN = new Set(["detail", "payload"]);

/** An hvc's output registers (X1..), e.g. "not_full=false" with MSGQUEUE_FULL. */
function hvcRet(ret) {
  const parts = Object.entries(ret ?? {})
    .filter(([k, v]) => !HVC_RET_HIDDEN.has(k) && (typeof v !== "object" || v === null))
    .map(([k, v]) => `${k}=${typeof v === "number" && v >= EXACT_INT_LIMIT ? hex(v) : v}`);
  return parts.length ? ` (${parts.join(", ")})` : "";
}

/** One-line human summary of a trace event, for the log. */
export function summarize(e) {
  switch (e.kind) {
    case "msgq.send":
      return `${e.src} → ${e.msgq}: msg ${e.msg} (${e.size} B${e.push ? ", PUSH" : ""}) depth ${e.depth}` +
        (e.payload ? ` "${String(e.payload).slice(0, 40)}"` : "");
    case "msgq.recv":
      return `${e.msgq} → ${e.dst}: msg ${e.msg} (${e.size} B) depth ${e.depth}`;
    case "msgq.flush": return `${e.msgq} flushed, ${e.dropped} dropped`;
    case "msgq.push": return `${e.msgq} push, depth ${e.depth}`;
    case "msgq.config": return `${e.msgq} notempty_thd ${e.notempty_thd} notfull_thd ${e.notfull_thd}`;
    case "virq.assert": case "virq.deliver": case "virq.eoi": case "virq.clear": case "virq.bind":
      return `vIRQ ${e.virq} → ${e.vm} (${e.source})`;
    case "bell.send": return `${e.src} rings ${e.doorbell}: +${hex(e.sent)} → flags ${hex(e.flags)}`;
    case "bell.recv": return `${e.vm} reads ${e.doorbell}: ${hex(e.old)} → flags ${hex(e.flags)}`;
    case "bell.mask": return `${e.doorbell} enable ${hex(e.enable_mask)} ack ${hex(e.ack_mask)}`;
    case "virtio.write": return `${e.vcpu} ${e.reg} ← ${hex(e.value)} (${e.device})${e.emulated ? "" : " fault"}`;
    case "virtio.backend": return `${e.vm} ${e.op} (${e.device})` +
      (e.op === "get_notification" ? ` vqs ${hex(e.taken_vqs)} reason ${hex(e.taken_reason)}` : "");
    case "virtq.avail": case "virtq.pop": case "virtq.used": case "virtq.reclaim":
      return `${e.vm} ${e.kind.slice(6)} ${e.device} q${e.queue} chain ${e.head}: avail ${e.avail_depth}, ` +
        `used ${e.used_depth}${e.data ? ` "${e.data}"` : ""}`;
    case "sched.switch":
      return `pCPU ${e.pcpu}: ${e.prev ?? "idle"} → ${e.next ?? "idle"} (${e.reason})`;
    case "vcpu.state": return `${e.vcpu} ${e.state} (${e.reason})`;
    case "vcpu.priority": return `${e.vcpu} priority ${e.old} → ${e.priority}`;
    case "vcpu.run": return e.stage === "enter"
      ? `${e.caller} vcpu_run: ${e.vcpu} runs on pCPU ${e.pcpu} in its place`
      : e.stage === "preempted" ? `${e.caller} preempted: ${e.vcpu} waits, the vcpu_run goes on later`
      : e.stage === "resume" ? `${e.caller} picked again: ${e.vcpu} runs on in its place`
      : `${e.caller} vcpu_run returns ${e.state} (${e.vcpu})`;
    case "mem.page_fault": return `${e.vcpu} ${e.access} ${hex(e.addr)}: page fault → ${e.owner}'s vcpu_run`;
    case "mem.extent_donate": return `${e.owner} donates page ${hex(e.pa)} to ${e.vm}${e.kept ? " (shared)" : ""}`;
    case "mem.map": return `page ${hex(e.pa)} arrives in ${e.vm} at ${hex(e.base)} (${e.rights})`;
    case "mem.unmap": return `page ${hex(e.pa)} unmapped from ${e.vm} at ${hex(e.base)}`;
    case "mem.access": return `${e.vm} ${e.access} ${hex(e.addr)} ${e.ok ? "ok" : "fault"}` +
      (e.access === "R" && e.ok ? ` = ${hex(e.value)}` : "");
    case "hvc": return `${e.vcpu} ${e.name} → ${e.result}${hvcRet(e.ret)}`;
    case "user.action": return `#${e.id} ${e.action} ${JSON.stringify(e.args)}`;
    case "rm.rpc": // RM RPC over the RM link: who, what, and the reply's RM error
      return `${e.src} → ${e.dst}: ${e.name} #${e.rpc_seq} ${e.dir}${e.stage === "receive" ? " received" : ""}` +
        (e.error ? ` ${e.error}` : "") + (e.fields ? ` ${JSON.stringify(e.fields)}` : "");
    case "vm.state": return `${e.vm} (vmid ${e.vmid}) → ${e.state}`;
    case "sim.snapshot": return `the whole machine: ${e.state?.vms?.length ?? 0} VMs (${e.scenario?.name ?? ""})`;
    case "obj.create": case "obj.destroy": return `${e.kind === "obj.create" ? "+" : "−"} ${e.type} ${e.name}`;
    case "cap.create": return `${e.vm} CSpace: ${e.caps?.length ?? 0} caps`;
    case "mem.lend": case "mem.share": case "mem.donate": case "mem.accept": case "mem.release":
      return `${e.owner} ${e.kind.slice(4)} #${e.handle} ${hex(e.base)} +${e.size} → ${e.vm} ${e.rights ?? ""}`;
    case "mem.reclaim": return `${e.owner} reclaims #${e.handle} ${hex(e.base)} +${e.size}`;
    case "mem.fault": return `${e.vm} ${e.access} fault at ${hex(e.addr)} (rights ${e.rights}, ${e.reason})`;
    default: {
      const rest = Object.entries(e).filter(([k]) => !["seq", "t", "kind"].includes(k));
      return rest.map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`)
        .join(" ").slice(0, 160);
    }
  }
}
