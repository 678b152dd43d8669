// RM RPC packets as a protocol analyser shows them: the packets that crossed the RM link
// queues (kept from msgq.send payloads), their 8-byte header decoded field by field and
// the payload of common messages decoded. Names come from the server (GET /api/rm-names)
// so the page never keeps its own copy of the RM's tables.
import { html } from "./format.js";
import { decodePayload } from "./rmfields.js";

const HEADER_BYTES = 8;
const API_BYTE = 0x21; // version 1, two header words (facts §5.1)
const BYTES_PER_ROW = 16;
const TYPE_BITS = 0x3;
const FRAG_SHIFT = 2;
const KEEP_PACKETS = 4000;
const TYPE_OF_DIR = { request: 1, reply: 2, notification: 3 };
const RM_VM = "RM";
// Header fields: [class, first byte, byte count, label]
const HEADER_FIELDS = [["f-api", 0, 1, "API version / header words"], ["f-type", 1, 1, "type / fragments"],
  ["f-seq", 2, 2, "sequence number"], ["f-id", 4, 4, "message id"]];

export const names = { messages: {}, errors: {}, exit_types: {}, exit_codes: {}, vm_states: {},
  os_states: {}, packet_types: {}, resource_types: {}, auth_types: {} };

/** Load the RM's names once; the decoder shows raw numbers until they arrive. */
export async function loadNames() {
  try {
    const res = await fetch("/api/rm-names");
    if (res.ok) Object.assign(names, await res.json());
  } catch { /* offline: numbers only */ }
}

export function hexToBytes(hex) {
  const s = String(hex ?? "");
  const out = new Uint8Array(Math.floor(s.length / 2));
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function u16(b, at) { return b.length >= at + 2 ? b[at] | (b[at + 1] << 8) : null; }
export function u32(b, at) { return b.length >= at + 4 ? (u16(b, at) + u16(b, at + 2) * 0x10000) : null; }
export function hex32(n) { return n == null ? "–" : `0x${n.toString(16).toUpperCase().padStart(8, "0")}`; }

/** The 8-byte header of one packet (null when too short to be one). */
export function parseHeader(bytes) {
  if (bytes.length < HEADER_BYTES) return null;
  return { api: bytes[0], version: bytes[0] & 0xf, words: bytes[0] >> 4, type: bytes[1] & TYPE_BITS,
    fragments: bytes[1] >> FRAG_SHIFT, seq: u16(bytes, 2), msgId: u32(bytes, 4) };
}

export function isRmQueue(name) { return typeof name === "string" && (name.endsWith(`_to_${RM_VM}`) || name.startsWith(`${RM_VM}_to_`)); }

/** Every RM packet seen on the wire, by queue message and by RPC (queue, type, seq, id). */
export class PacketIndex {
  constructor() { this.clear(); }

  clear() { this.byMsg = new Map(); this.byRpc = new Map(); this.open = new Map(); }

  record(e) {
    if (e.kind !== "msgq.send" || !isRmQueue(e.msgq) || !e.payload) return;
    const bytes = hexToBytes(e.payload);
    const h = parseHeader(bytes);
    if (!h) return;
    const pkt = { hex: e.payload, bytes, header: h, msgq: e.msgq, msg: e.msg, seq: e.seq, src: e.src, dst: e.dst };
    this.byMsg.set(`${e.msgq}#${e.msg}`, pkt);
    if (h.type !== 0) {
      const key = `${e.msgq}|${h.type}|${h.seq}|${h.msgId}`;
      const rpc = { packets: [pkt], key };
      this.byRpc.set(key, rpc);
      this.open.set(e.msgq, rpc);
    } else this.open.get(e.msgq)?.packets.push(pkt); // a continuation joins the message in progress
    if (this.byMsg.size > KEEP_PACKETS) this.byMsg.delete(this.byMsg.keys().next().value);
    if (this.byRpc.size > KEEP_PACKETS) this.byRpc.delete(this.byRpc.keys().next().value);
  }

  /** Packets of the RPC an rm.rpc event reports (null if they were not seen). */
  forRpc(e) {
    const queue = e.src === RM_VM ? `${RM_VM}_to_${e.dst}` : `${e.src}_to_${RM_VM}`;
    return this.byRpc.get(`${queue}|${TYPE_OF_DIR[e.dir]}|${e.rpc_seq}|${e.msg_id}`)?.packets ?? null;
  }

  /** Packets to show for a log event or a queued message; null when it is not an RM packet. */
  packetsFor(e, state) {
    if (e.kind === "rm.rpc") return this.forRpc(e);
    if ((e.kind === "msgq.send" || e.kind === "msgq.recv") && isRmQueue(e.msgq)) {
      const pkt = this.byMsg.get(`${e.msgq}#${e.msg}`);
      if (pkt) return this.withContinuations(pkt);
      const item = state?.msgqs.get(e.msgq)?.items.find((i) => i.msg === e.msg);
      if (item?.payload) return [this.fromItem(e.msgq, item, state)];
    }
    return null;
  }

  withContinuations(pkt) {
    if (pkt.header.type === 0) return [pkt];
    const h = pkt.header;
    const rpc = this.byRpc.get(`${pkt.msgq}|${h.type}|${h.seq}|${h.msgId}`);
    return rpc && rpc.packets[0] === pkt ? rpc.packets : [pkt];
  }

  fromItem(msgq, item, state) {
    const q = state?.msgqs.get(msgq);
    const bytes = hexToBytes(item.payload);
    return { hex: item.payload, bytes, header: parseHeader(bytes), msgq, msg: item.msg, src: q?.sender, dst: q?.receiver };
  }
}

function hexDump(parent, bytes, payloadMarks) {
  const box = html("div", { class: "hexdump", "data-testid": "pkt-hex" }, null, parent);
  const cls = new Array(bytes.length).fill("f-payload");
  for (const [c, at, n] of HEADER_FIELDS) for (let i = at; i < at + n && i < bytes.length; i++) cls[i] = c;
  for (const [c, at, n] of payloadMarks) for (let i = at; i < at + n && i < bytes.length; i++) cls[i] = c;
  for (let row = 0; row < bytes.length; row += BYTES_PER_ROW) {
    const line = html("div", { class: "hx-row" }, null, box);
    html("span", { class: "hx-off" }, row.toString(16).padStart(4, "0"), line);
    for (let i = row; i < Math.min(row + BYTES_PER_ROW, bytes.length); i++) {
      html("span", { class: `hx-b ${cls[i]}` }, bytes[i].toString(16).padStart(2, "0"), line);
    }
  }
}

function rows(parent, list, testid) {
  const dl = html("dl", { class: "pkt-fields", "data-testid": testid }, null, parent);
  for (const [label, value, cls, id] of list) {
    const dt = html("dt", {}, null, dl);
    if (cls) html("i", { class: `sw-b ${cls}` }, null, dt);
    dt.append(label);
    html("dd", id ? { "data-testid": id } : {}, value, dl);
  }
  return dl;
}

/** Draw the packets of one RM message into `root` (the inspector panel). */
export function renderPackets(root, packets, title) {
  const first = packets[0];
  const h = first.header;
  const typeName = names.packet_types[h?.type] ?? String(h?.type);
  const msgName = names.messages[h?.msgId] ?? "unknown id";
  html("h2", { "data-testid": "insp-title" }, title ?? `RM packet: ${msgName}`, root);
  html("p", { class: "sub" }, `${first.src ?? "?"} → ${first.dst ?? "?"} over ${first.msgq} · ` +
    `${packets.length} packet${packets.length > 1 ? "s" : ""} · ${first.bytes.length} bytes in the first`, root);
  if (!h) { html("p", { class: "result bad" }, "shorter than the 8-byte header: the RM drops it", root); return; }
  const apiOk = h.api === API_BYTE;
  html("h3", {}, "Header (8 bytes, little-endian)", root);
  rows(root, [
    ["API", `0x${h.api.toString(16)}: version ${h.version}, ${h.words} header words${apiOk ? "" : " (invalid: dropped)"}`,
      "f-api", "pkt-api"],
    ["type", `${h.type} ${typeName}`, "f-type", "pkt-type"],
    ["fragments", `${h.fragments} continuation packet${h.fragments === 1 ? "" : "s"} follow`, "f-type", "pkt-frags"],
    ["seq", String(h.seq), "f-seq", "pkt-seq"],
    ["msg_id", `${hex32(h.msgId)} ${msgName}`, "f-id", "pkt-msgid"],
  ], "pkt-header");
  const payload = concatPayload(packets);
  const decoded = decodePayload(h, payload, names);
  html("h3", {}, `Payload (${payload.length} bytes)`, root);
  if (decoded.fields.length) rows(root, decoded.fields, "pkt-payload");
  else html("p", { class: "hint" }, payload.length ? "not decoded for this message" : "empty", root);
  packets.forEach((p, i) => {
    if (packets.length > 1) html("h3", {}, i ? `Continuation ${i} (msg ${p.msg})` : `First packet (msg ${p.msg})`, root);
    hexDump(root, p.bytes, i === 0 ? decoded.marks : []);
  });
}

/** The message body: every packet's bytes after its header, in order. */
export function concatPayload(packets) {
  const parts = packets.map((p) => p.bytes.subarray(HEADER_BYTES));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}
