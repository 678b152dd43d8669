// One VM box of the diagram: name, its RM lifecycle state as a badge (colour and text),
// vCPU chips, the memory strip, a stage-2 fault marker; plus the caption of the latest
// RM RPC drawn by the RM box, and the SVG patterns the memory strip uses.
import { svg, svgText, setAttr } from "./format.js";
import { drawStrip, fmtAddr } from "./memmap.js";
import { fitText } from "./fit.js";

const KIND_LABEL = { rm: "Resource Manager VM", primary: "primary VM (HLOS)", guest: "guest VM" };
const PAD = 12;
const NAME_DROP = 10; // name baseline below its font size: room for an error badge above
const BADGE_PAD = 8;
const SUB_MIN_W = 44; // narrower than this the sub line says nothing readable: left out
const FAULT_H = 28;
const FLASH = [{ opacity: 1 }, { opacity: 0.2 }, { opacity: 1 }];
const FLASH_MS = 300;
const FLASH_TIMES = 4;
const CAPTION_PAD = 12;
const DIR_WORD = { request: "", reply: "reply", notification: "notification" };


/** Hatch, dots and cross-hatch for lent / shared / borrowed memory (never colour alone). */
export function memPatterns(parent) {
  const defs = svg("defs", {}, parent);
  const pat = (id, draw) => {
    const p = svg("pattern", { id, width: 8, height: 8, patternUnits: "userSpaceOnUse" }, defs);
    draw(p);
  };
  pat("pat-lent", (p) => svg("path", { d: "M-2,10 L10,-2 M-2,2 L2,-2 M6,10 L10,6", class: "pat-line" }, p));
  pat("pat-shared", (p) => svg("circle", { cx: 4, cy: 4, r: 1.8, class: "pat-dot" }, p));
  pat("pat-borrowed", (p) => svg("path", { d: "M0,4 H8 M4,0 V8", class: "pat-line" }, p));
}

export function buildVmBox(parent, vm, box, font) {
  const g = svg("g", { class: `vm vm-${vm.kind}`, "data-vm": vm.name, "data-testid": `vm-${vm.name}`,
    tabindex: 0, role: "button", "aria-label": `VM ${vm.name}` }, parent);
  const rect = svg("rect", { x: box.x, y: box.y, width: box.w, height: box.h, rx: 12, class: "vm-box" }, g);
  const name = svgText(g, box.x + PAD, box.y + font + NAME_DROP, "", "vm-name");
  name.style.fontSize = `${font}px`;
  fitText(name, vm.name, box.w - 2 * PAD);
  const s = box.state;
  const sub = svgText(g, s.x, s.y + s.h / 2 + 6, "", "vm-sub");
  const stateG = svg("g", { class: "vm-state", "data-testid": `vm-state-${vm.name}` }, g);
  const stateRect = svg("rect", { x: s.x, y: s.y, width: s.w, height: s.h, rx: 6 }, stateG);
  const stateText = svgText(stateG, s.x + BADGE_PAD, s.y + s.h / 2 + 6, "", "vm-state-text");
  const mem = svg("g", { class: "memstrip", "data-testid": `memstrip-${vm.name}` }, g);
  const fault = svg("g", { class: "fault", visibility: "hidden", "data-testid": `mem-fault-${vm.name}` }, g);
  const faultRect = svg("rect", { x: box.x + 10, y: box.y + box.h - FAULT_H / 2, height: FAULT_H, rx: 6, width: 10 }, fault);
  const faultText = svgText(fault, box.x + 18, box.y + box.h + 6, "", "fault-text");
  return { g, rect, sub, box, stateG, stateRect, stateText, mem, fault, faultRect, faultText };
}

/** Header text and state badge. */
export function updateVmHead(node, vm, narrow) {
  const pending = vm.virqs.filter((q) => q.pending || q.active).map((q) => q.virq);
  const sub = narrow ? `vmid ${vm.vmid}${pending.length ? " · vIRQ" : ""}`
    : `${KIND_LABEL[vm.kind] ?? vm.kind} · vmid ${vm.vmid}` + (pending.length ? ` · vIRQ ${pending.join(",")}` : "");
  const st = vm.state ?? "NONE";
  // The badge is as wide as its state's name (cut only if the box is narrower still);
  // the sub line takes what is left of the row, or nothing.
  const s = node.box.state;
  const badgeW = fitText(node.stateText, st, s.w - 2 * BADGE_PAD) + 2 * BADGE_PAD;
  setAttr(node.stateRect, "width", badgeW);
  setAttr(node.stateG, "class", `vm-state rs-${st}`);
  setAttr(node.stateG, "data-state", st);
  const room = s.w - badgeW - BADGE_PAD;
  setAttr(node.sub, "x", s.x + badgeW + BADGE_PAD);
  const w = fitText(node.sub, room >= SUB_MIN_W ? sub : "", Math.max(0, room));
  if (w && (narrow ? node.sub.textContent !== sub : node.sub.textContent.length < 4)) fitText(node.sub, "", 0);
}

/** Memory strip and fault marker; flashes what the last mem.* event touched. */
export function updateVmMem(node, state, name, motion) {
  const flash = state.memFlash.get(name);
  state.memFlash.delete(name);
  drawStrip(node.mem, node.box.mem, state.memory.get(name), flash, motion);
  const f = state.faults.get(name);
  if (!f) { setAttr(node.fault, "visibility", "hidden"); node.faultSeq = null; return; }
  const text = f.kind === "mem.page_fault"
    ? `page fault: ${f.access} at ${fmtAddr(f.addr)}, asks ${f.owner}`
    : `stage-2 fault: ${f.access} at ${fmtAddr(f.addr)} (has ${f.rights})`;
  const w = fitText(node.faultText, text, node.box.w - 36) + 16;
  setAttr(node.faultRect, "width", w);
  setAttr(node.fault, "visibility", "visible");
  setAttr(node.fault, "data-addr", fmtAddr(f.addr));
  setAttr(node.fault, "data-kind", f.kind);
  if (node.faultSeq !== f.seq) {
    node.faultSeq = f.seq;
    if (motion) node.fault.animate(FLASH, { duration: FLASH_MS, iterations: FLASH_TIMES });
    if (motion) node.rect.animate([{ stroke: "#d55e00", strokeWidth: 8 }, { stroke: "#d55e00", strokeWidth: 8 }, {}],
      { duration: FLASH_MS * FLASH_TIMES });
  }
}

/** One line saying what the newest RM RPC is, e.g. "HLOS → RM: VM_ALLOCATE #3". */
export function rpcCaption(e) {
  if (!e) return "";
  const what = DIR_WORD[e.dir] ? ` ${DIR_WORD[e.dir]}` : "";
  const err = e.dir === "reply" && e.error ? ` ${e.error}` : "";
  const about = e.fields?.vm ? ` (${e.fields.vm}${e.fields.vm_status ? ` ${e.fields.vm_status}` : ""}` +
    `${e.fields.exit_type ? ` ${e.fields.exit_type}` : ""})` : "";
  const stage = e.stage === "receive" ? " ✓ received" : "";
  return `${e.src} → ${e.dst}: ${e.name} #${e.rpc_seq}${what}${err}${about}${stage}`;
}

export function buildCaption(parent, c) {
  if (!c) return null;
  const g = svg("g", { class: "rpc-caption", visibility: "hidden", "data-testid": "rpc-caption" }, parent);
  const rect = svg("rect", { x: c.x, y: c.y, width: c.w, height: c.h, rx: 8 }, g);
  const label = svgText(g, c.x + CAPTION_PAD, c.y + c.h / 2 + 6, "", "rpc-caption-text");
  return { g, rect, label, c, seq: null };
}

export function updateCaption(node, e, motion) {
  if (!node) return;
  if (!e) { setAttr(node.g, "visibility", "hidden"); return; }
  setAttr(node.g, "class", `rpc-caption rpc-${e.dir}${e.error && e.error !== "OK" ? " rpc-err" : ""}`);
  setAttr(node.g, "visibility", "visible");
  const w = fitText(node.label, rpcCaption(e), node.c.w - 2 * CAPTION_PAD) + 2 * CAPTION_PAD;
  setAttr(node.rect, "width", w);
  if (node.seq !== e.seq && e.stage === "send" && motion) {
    node.rect.animate([{ strokeWidth: 6 }, { strokeWidth: 2 }], { duration: FLASH_MS * 2 });
  }
  node.seq = e.seq;
}
