// Payload layouts of the common RM messages (facts §5.3, §6.3, §8.2-8.4), decoded into
// labelled fields for the packet view. A layout the facts sheet gives is decoded; the
// rest is shown as bytes only.
import { u16, u32, hex32 } from "./rmpacket.js";

const HDR = 8; // payload offsets are shown as offsets in the packet
const REQUEST = 1;
const REPLY = 2;
const NOTIFICATION = 3;
const VMID_ONLY = new Set(["VM_ALLOCATE", "VM_DEALLOCATE", "VM_START", "VM_RESET", "VM_INIT",
  "VM_GET_STATE", "VM_GET_HYP_RESOURCES"]);
const HYP_RESOURCE_BYTES = 44;
// Offsets in one entry: type u8, res u8, partner_vmid u16, handle u32, label u32,
// capid u64, virq_handle u32, virq u32, base u64, size u64 (RM vm_resource_msg.h).
const RES_PARTNER = 2;
const RES_LABEL = 8;
const RES_CAPID = 12;
const RES_VIRQ = 24;
const ACL_ENTRY = 4;
const SGL_ENTRY = 16;
const ATTR_ENTRY = 4;
const LIST_HEAD = 4;
const STOP_FORCE = 0x1;
const EXIT_CODE_SHIFT = 16;
const RIGHTS = [[4, "R"], [2, "W"], [1, "X"]];

function u64(b, at) { // exact below 2^53, enough for the simulator's addresses and sizes
  const lo = u32(b, at); const hi = u32(b, at + 4);
  return lo == null || hi == null ? null : hi * 2 ** 32 + lo;
}
function hx(n) { return n == null ? "–" : `0x${n.toString(16)}`; }
function capid(hi, lo) { // a 64-bit capid from its two halves, exact at any size
  return hi ? `0x${hi.toString(16)}${lo.toString(16).padStart(8, "0")}` : hx(lo);
}
function rights(r) { return RIGHTS.filter(([bit]) => r & bit).map(([, c]) => c).join("") || "NONE"; }

const FIELD_COLOURS = ["f-p0", "f-p1", "f-p2", "f-p3"]; // neighbouring fields never share one

class Fields {
  constructor(bytes) { this.b = bytes; this.fields = []; this.marks = []; this.n = 0; }
  add(label, at, n, value, cls) {
    if (at + n > this.b.length) return null;
    cls = cls ?? FIELD_COLOURS[this.n++ % FIELD_COLOURS.length];
    this.fields.push([label, value, cls]);
    this.marks.push([cls, HDR + at, n]);
    return true;
  }
  u16(label, at, fmt = String, cls) { const v = u16(this.b, at); if (v != null) this.add(label, at, 2, fmt(v), cls); return v; }
  u32(label, at, fmt = String, cls) { const v = u32(this.b, at); if (v != null) this.add(label, at, 4, fmt(v), cls); return v; }
  u8(label, at, fmt = String, cls) { const v = this.b[at]; if (v != null) this.add(label, at, 1, fmt(v), cls); return v; }
  note(label, value) { this.fields.push([label, value, null]); }
}

/** {fields: [[label, value, cls]], marks: [[cls, packetOffset, n]]} for one message body. */
export function decodePayload(h, body, names) {
  const f = new Fields(body);
  const name = names.messages[h.msgId] ?? "";
  if (h.type === REPLY) {
    f.u32("error", 0, (v) => `${hex32(v)} ${names.errors[v] ?? "unknown"}`, "f-err");
    replyData(f, name, names);
  } else if (h.type === REQUEST) request(f, name, names);
  else if (h.type === NOTIFICATION) notification(f, name, names);
  return f;
}

function replyData(f, name, names) {
  if (f.b.length <= 4) return;
  if (name === "VM_ALLOCATE") f.u32("new vmid", 4, hx);
  else if (["MEM_LEND", "MEM_SHARE", "MEM_DONATE"].includes(name)) f.u32("memparcel handle", 4);
  else if (name === "VM_GET_STATE") {
    f.u8("vm_state", 4, (v) => `${v} ${names.vm_states[v] ?? ""}`);
    f.u8("os_state", 5, (v) => `${v} ${names.os_states[v] ?? ""}`);
    f.u16("app_status", 6);
  } else if (name === "VM_GET_HYP_RESOURCES") {
    // The caller's own caps (facts §5.4): type, partner, label, capid, vIRQ of each entry.
    const n = f.u32("entries", 4);
    for (let i = 0; i < (n ?? 0); i++) {
      const at = 8 + i * HYP_RESOURCE_BYTES;
      if (f.u8(`[${i}] type`, at, (v) => `${v} ${names.resource_types[v] ?? ""}`) == null) break;
      f.u16(`[${i}] partner_vmid`, at + RES_PARTNER, hx);
      f.u32(`[${i}] label`, at + RES_LABEL);
      const lo = u32(f.b, at + RES_CAPID); const hi = u32(f.b, at + RES_CAPID + 4);
      if (lo != null && hi != null) f.add(`[${i}] capid`, at + RES_CAPID, 8, capid(hi, lo));
      f.u32(`[${i}] virq`, at + RES_VIRQ, (v) => (v ? String(v) : "0 (none)"));
    }
  }
}

function request(f, name, names) {
  if (VMID_ONLY.has(name)) f.u16("vmid", 0, (v) => (v === 0 && name === "VM_ALLOCATE" ? "0 (RM picks one)" : hx(v)));
  else if (name === "VM_STOP") {
    f.u16("vmid", 0, hx);
    f.u8("flags", 2, (v) => `${hx(v)}${v & STOP_FORCE ? " FORCE" : " (graceful)"}`);
    f.u32("stop_reason", 4);
  } else if (name === "VM_CONFIG_IMAGE") {
    f.u16("vmid", 0, hx);
    f.u16("auth", 2, (v) => `${v} ${names.auth_types[v] ?? ""}`);
    f.u32("mem handle", 4);
  } else if (name === "VM_EXIT") {
    f.u16("exit_flags", 0, hx);
    f.u8("exit_code", 2, (v) => `${v} ${names.exit_codes[v] ?? ""}`);
  } else if (["MEM_LEND", "MEM_SHARE", "MEM_DONATE"].includes(name)) memTransfer(f, 0);
  else if (name === "MEM_ACCEPT") {
    f.u32("handle", 0);
    f.u8("trans_type", 5);
    memLists(f, 12);
  } else if (["MEM_RELEASE", "MEM_RECLAIM", "MEM_NOTIFY"].includes(name)) {
    f.u32("handle", 0);
    f.u8("flags", 4, hx);
  }
}

function memTransfer(f, at) {
  f.u8("mem_type", at, (v) => (v ? `${v} IO` : "0 NORMAL"));
  f.u8("flags", at + 2, hx);
  f.u32("label", at + 4);
  memLists(f, at + 8);
}

/** ACL, SGL and attribute lists: each "u16 count, u16 pad, entries". */
function memLists(f, at) {
  const acl = f.u16("ACL entries", at, String, "f-count");
  if (acl == null) return;
  for (let i = 0; i < acl; i++) {
    const e = at + LIST_HEAD + i * ACL_ENTRY;
    const vmid = u16(f.b, e);
    if (vmid != null) f.add(`ACL[${i}]`, e, ACL_ENTRY, `vmid ${hx(vmid)} ${rights(f.b[e + 2])}`);
  }
  const sglAt = at + LIST_HEAD + acl * ACL_ENTRY;
  const sgl = f.u16("SGL entries", sglAt, String, "f-count");
  if (sgl == null) return;
  for (let i = 0; i < sgl; i++) {
    const e = sglAt + LIST_HEAD + i * SGL_ENTRY;
    const base = u64(f.b, e); const size = u64(f.b, e + 8);
    if (size != null) f.add(`SGL[${i}]`, e, SGL_ENTRY, `ipa ${hx(base)} size ${hx(size)}`);
  }
  const attrAt = sglAt + LIST_HEAD + sgl * SGL_ENTRY;
  const attrs = f.u16("attr entries", attrAt, String, "f-count");
  if (attrs) f.marks.push(["f-data", HDR + attrAt + LIST_HEAD, attrs * ATTR_ENTRY]);
}

function notification(f, name, names) {
  if (name === "NOTIFY_VM_STATUS") {
    f.u16("vmid", 0, hx);
    f.u8("vm_status", 4, (v) => `${v} ${names.vm_states[v] ?? ""}`);
    f.u8("os_status", 5, (v) => `${v} ${names.os_states[v] ?? ""}`);
    f.u16("app_status", 6);
  } else if (name === "NOTIFY_VM_EXITED") {
    f.u16("vmid", 0, hx);
    f.u16("exit_type", 2, (v) => `${v} ${names.exit_types[v] ?? ""}`);
    const size = f.u32("reason_size", 4);
    if (size) {
      f.u32("reason[0]", 8, (v) => `${hex32(v)}: flags ${hx(v & 0xffff)}, exit_code ` +
        `${Math.floor(v / 2 ** EXIT_CODE_SHIFT) & 0xff} ${names.exit_codes[Math.floor(v / 2 ** EXIT_CODE_SHIFT) & 0xff] ?? ""}`);
    }
  } else if (name === "NOTIFY_VM_SHUTDOWN") f.u32("stop_reason", 0);
  else if (name === "MEM_SHARED") {
    f.u32("handle", 0);
    f.u8("trans_type", 5);
    f.u16("owner vmid", 8, hx);
  } else if (name === "MEM_ACCEPTED" || name === "MEM_RELEASED") {
    f.u32("handle", 0);
    f.u16("vmid", 4, hx);
  }
}
