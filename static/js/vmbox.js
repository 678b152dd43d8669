// One VM box of the diagram: name, its RM lifecycle state as a badge (colour and text),
// vCPU chips, the memory strip, a stage-2 fault marker; plus the caption of the latest
// RM RPC drawn by the RM box, and the SVG patterns the memory strip uses.
import { svg, svgText, setText, setAttr } from "./format.js";
import { drawStrip, fmtAddr } from "./memmap.js";

const KIND_LABEL = { rm: "Resource Manager VM", primary: "primary VM (HLOS)", guest: "guest VM" };
const BADGE_CHAR_W = 11; // 15px extra-bold capitals, in viewBox units
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
  svgText(g, box.x + 12, box.y + font + 6, vm.name, "vm-name").style.fontSize = `${font}px`;
  const sub = svgText(g, box.x + 12, box.y + font + 34, "", "vm-sub");
  const s = box.state;
  const stateG = svg("g", { class: "vm-state", "data-testid": `vm-state-${vm.name}` }, g);
  const stateRect = svg("rect", { x: s.x, y: s.y, width: s.w, height: s.h, rx: 6 }, stateG);
  const stateText = svgText(stateG, s.x + s.w / 2, s.y + s.h / 2 + 6, "", "vm-state-text", "middle");
  const mem = svg("g", { class: "memstrip", "data-testid": `memstrip-${vm.name}` }, g);
  const fault = svg("g", { class: "fault", visibility: "hidden", "data-testid": `mem-fault-${vm.name}` }, g);
  const faultRect = svg("rect", { x: box.x + 10, y: box.y + box.h - FAULT_H / 2, height: FAULT_H, rx: 6, width: 10 }, fault);
  const faultText = svgText(fault, box.x + 18, box.y + box.h + 6, "", "fault-text");
  return { g, rect, sub, box, stateG, stateRect, stateText, mem, fault, faultRect, faultText };
}

/** Header text and state badge. */
export function updateVmHead(node, vm, narrow) {
  const pending = vm.virqs.filter((q) => q.pending || q.active).map((q) => q.virq);
  if (narrow) setText(node.sub, `vmid ${vm.vmid}${pending.length ? " · vIRQ" : ""}`);
  else {
    setText(node.sub, `${KIND_LABEL[vm.kind] ?? vm.kind} · vmid ${vm.vmid}` +
      (pending.length ? ` · vIRQ ${pending.join(",")}` : ""));
  }
  const st = vm.state ?? "NONE";
  setText(node.stateText, st);
  setAttr(node.stateG, "class", `vm-state rs-${st}`);
  setAttr(node.stateG, "data-state", st);
  // Shrink the type for long names in a narrow badge rather than letting it spill out.
  const fit = node.box.state.w / (st.length * BADGE_CHAR_W);
  const size = fit < 1 ? `${Math.max(10, Math.floor(15 * fit))}px` : "";
  if (node.stateText.style.fontSize !== size) node.stateText.style.fontSize = size; // CSSOM: CSP-safe
}

/** Memory strip and fault marker; flashes what the last mem.* event touched. */
export function updateVmMem(node, state, name, motion) {
  const flash = state.memFlash.get(name);
  state.memFlash.delete(name);
  drawStrip(node.mem, node.box.mem, state.memory.get(name), flash, motion);
  const f = state.faults.get(name);
  if (!f) { setAttr(node.fault, "visibility", "hidden"); node.faultSeq = null; return; }
  setText(node.faultText, `stage-2 fault: ${f.access} at ${fmtAddr(f.addr)} (has ${f.rights})`);
  const w = Math.min(node.box.w - 20, node.faultText.getComputedTextLength() + 16);
  setAttr(node.faultRect, "width", w);
  setAttr(node.fault, "visibility", "visible");
  setAttr(node.fault, "data-addr", fmtAddr(f.addr));
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
  setText(node.label, rpcCaption(e));
  setAttr(node.g, "class", `rpc-caption rpc-${e.dir}${e.error && e.error !== "OK" ? " rpc-err" : ""}`);
  setAttr(node.g, "visibility", "visible");
  const w = Math.min(node.c.w, node.label.getComputedTextLength() + 2 * CAPTION_PAD);
  setAttr(node.rect, "width", w);
  if (node.seq !== e.seq && e.stage === "send" && motion) {
    node.rect.animate([{ strokeWidth: 6 }, { strokeWidth: 2 }], { duration: FLASH_MS * 2 });
  }
  node.seq = e.seq;
}
