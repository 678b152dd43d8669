// SVG diagram of the machine, after the pictures in Linux's Documentation/virt/gunyah: VMs on top, the Gunyah
// layer with its queues and doorbells, pCPU lanes below. Nodes are created once per
// scenario; update() only rewrites attributes of what the trace changed.
import { computeLayout, WIDTH, MIN_WIDTH, PHONE_WIDTH, MIN_LABEL_UNITS, LEGIBLE_PX } from "./layout.js";
import { svg, svgText, setText, setAttr, hex, hexMask, flagBit, fmtTime } from "./format.js";
import { buildVmBox, updateVmHead, updateVmMem, memPatterns, buildCaption, updateCaption } from "./vmbox.js";
import { fitText, measure, spread } from "./fit.js";
import { Viewport } from "./viewport.js";
import { Tracks, fmtSpan } from "./tracks.js";

const STATE_SHORT = { running: "running", ready: "ready", wfi: "wfi", off: "off", suspended: "susp" };
// A PSCI vCPU's power state, in the slot the priority takes otherwise (vcpu.power).
const POWER_SHORT = { on: "ON", off: "OFF", suspended: "SUS" };
const BADGE_H = 26;
const BADGE_W_MAX = 220;
const BADGE_RISE = 15; // an error badge sits on its box's top edge, above the labels
const PAD = 12;
const GAP = 10;
const WIDEN_STEPS = 12; // widths tried between the stage's and WIDTH for a tall picture
const CHIP_SIDE_W = 38; // v0 and p32 either side of a wide chip's state
const TIMER_VIRQ = 27; // the EL1 virtual timer's PPI (consts.PLATFORM_VM_ARCH_VIRTUAL_TIMER_IRQ)
const CHIP_LINE1 = 14.5; // baselines of a two-line chip (36 high): state, then timer
const CHIP_LINE2 = 32.5;

/** A vCPU's virtual timer in a few words, and its look: off, armed (with its deadline),
 * fired (ISTATUS: vIRQ 27 asserted, level) or masked (IMASK). */
export function timerLabel(t) {
  if (!t || !t.enable) return ["timer off", "off"];
  if (t.istatus && t.imask) return ["timer fired · masked", "masked"];
  if (t.istatus) return [`timer fired · vIRQ ${TIMER_VIRQ}`, "fired"];
  if (t.imask) return ["timer masked", "masked"];
  return [`timer at ${fmtTime(t.deadline)}`, "armed"];
}
const CELL_ATTR = { msgq: "data-msgq", bell: "data-bell", virtio: "data-virtio" };
const CELL_WORD = { msgq: "message queue", bell: "doorbell", virtio: "virtio-MMIO device" };
const VIRTIO_DEVICE = { 2: "block", 3: "console" }; // virtio 1.1 §5 device IDs
// virtio_mmio_notify_reason bits (facts §10.1): what waits for the backend.
const REASONS = [[0x1, "NEW_BUFFER"], [0x2, "RESET_RQST"], [0x8, "DRIVER_OK"], [0x10, "FAILED"]];

/** An error badge; its right edge at `right`, over the top edge at `top`. */
function badge(parent, right, top) {
  const y = top - BADGE_RISE;
  const g = svg("g", { class: "badge", visibility: "hidden", "data-testid": "error-badge" }, parent);
  const rect = svg("rect", { x: right - 120, y, rx: 8, height: BADGE_H, width: 120 }, g);
  const label = svgText(g, right - 112, y + BADGE_H / 2 + 6, "", "badge-text");
  return { g, rect, label, right };
}

export class Diagram {
  constructor(svgEl) {
    this.svg = svgEl;
    this.layout = null;
    this.motion = true; // false under prefers-reduced-motion: no flashes
    this.onSelect = () => {};
    this.onRelayout = () => {}; // main.js rebuilds from the current state
    this.unfolded = new Set();  // VMs whose RM link queues are drawn; or "all"
    this.hidden = new Set();    // VMs left out of the picture with their objects
    this.view = new Viewport(svgEl);
    this.tracks = new Tracks(); // each pCPU lane's recent past
    this.tracks.onChange = () => this.updateWindowLabel();
    svgEl.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && ev.target.closest("[data-vm],[data-msgq],[data-bell],[data-rmlink],[data-track-zoom]")) {
        ev.target.dispatchEvent(new MouseEvent("click", { bubbles: true }));
      }
    });
    svgEl.addEventListener("click", (ev) => {
      if (this.view.dragged) return; // the end of a pan, not a click
      const zoom = ev.target.closest("[data-track-zoom]");
      if (zoom) { this.tracks.zoom(Number(zoom.dataset.trackZoom)); return; }
      const fold = ev.target.closest("[data-rmlink]");
      if (fold) { this.unfold(fold.dataset.rmlink); return; }
      const hit = ev.target.closest("[data-vm],[data-msgq],[data-bell]");
      if (!hit) return;
      if (hit.dataset.vm) this.onSelect({ type: "vm", name: hit.dataset.vm });
      else if (hit.dataset.msgq) this.onSelect({ type: "msgq", name: hit.dataset.msgq });
      else this.onSelect({ type: "bell", name: hit.dataset.bell });
    });
  }

  /** Draw one VM's RM link queues (or fold them back into their marker). */
  unfold(vm, show = true) {
    if (this.unfolded === "all") return;
    if (show) this.unfolded.add(vm); else this.unfolded.delete(vm);
    this.onRelayout();
  }

  /** Draw every VM's RM link queues, or fold them all into their markers. */
  setRmLinks(all) {
    this.unfolded = all ? "all" : new Set();
    this.onRelayout();
  }

  /** Leave a VM (and its queues and doorbells) out of the picture, or draw it again. */
  setHidden(vm, hide) {
    if (hide) this.hidden.add(vm); else this.hidden.delete(vm);
    this.onRelayout();
  }

  /** The scenario's focus: which RM links start unfolded (facts: RM link, §5). */
  setFocus(focus) {
    this.unfolded = focus?.rm_links === "unfolded" ? "all" : new Set();
    this.hidden = new Set();
    this.view.laidOut = false; // a loaded scenario starts from "fit", even if the same size
  }

  /** The width to lay out for: the stage's, so a viewBox unit is about a CSS pixel. */
  layoutWidth() {
    const w = this.svg.clientWidth;
    return w > 0 ? w : WIDTH;
  }

  clampWidth(w) { return w < PHONE_WIDTH ? Math.round(w) : Math.round(Math.max(MIN_WIDTH, Math.min(WIDTH, w))); }

  /** The stage's size the diagram was last laid out for ("WxH"), to re-lay out on a change. */
  stageSize() { return `${this.svg.clientWidth}x${this.svg.clientHeight}`; }

  /** Lay out for the stage's width; a picture taller than the stage's shape is also laid
   *  out wider (up to WIDTH: wider boxes, fewer rows), and the width drawn largest wins. */
  fitLayout(snap) {
    const opts = { unfolded: this.unfolded, hidden: this.hidden };
    const cw = this.svg.clientWidth, ch = this.svg.clientHeight;
    this.builtFor = this.stageSize();
    const first = this.clampWidth(this.layoutWidth());
    let best = computeLayout(snap, { ...opts, width: first });
    // A phone's picture keeps the stage's width and pans instead (viewport.js fitWidth).
    if (best.phone || !(cw > 0 && ch > 0) || best.height / ch <= best.width / cw) return best;
    const scale = (L) => Math.min(cw / L.width, ch / L.height);
    for (let i = 1; i <= WIDEN_STEPS; i++) {
      const L = computeLayout(snap, { ...opts, width: Math.round(first + (WIDTH - first) * i / WIDEN_STEPS) });
      if (scale(L) > scale(best)) best = L;
    }
    if (scale(best) * MIN_LABEL_UNITS >= LEGIBLE_PX) return best;
    // Even the best fit draws labels too small (many VMs): lay out for the stage's width,
    // a viewBox unit a CSS pixel, and pan up and down (Fit shows the top).
    return { ...computeLayout(snap, { ...opts, width: cw, minWidth: PHONE_WIDTH }), pan: true };
  }

  /** Create every node for this snapshot's machine (again after a run-time structure
   *  change; the animation layer is kept so messages in flight are not lost). */
  build(snap) {
    this.snap = snap;
    const L = (this.layout = this.fitLayout(snap));
    const keepFx = this.fx;
    this.svg.replaceChildren();
    memPatterns(this.svg);
    this.view.fitWidth = L.phone || Boolean(L.pan);
    this.view.setBase(L.width, L.height);
    this.svg.classList.toggle("narrow-vms", L.narrowVms);
    this.svg.classList.toggle("narrow-cells", L.narrowCells);
    this.vms = new Map(); this.chips = new Map(); this.cells = new Map(); this.links = new Map();
    const gHyp = svg("g", { class: "hyp-layer" }, this.svg);
    const gLinks = svg("g", { class: "links" }, this.svg);
    const gCells = svg("g", { class: "cells" }, this.svg);
    const gVms = svg("g", { class: "vms" }, this.svg);
    const gLanes = svg("g", { class: "lanes" }, this.svg);
    const gCaption = svg("g", { class: "captions" }, this.svg);
    if (keepFx) this.svg.appendChild(keepFx);
    this.fx = keepFx ?? svg("g", { class: "fx" }, this.svg);
    svg("rect", { x: L.hyp.x, y: L.hyp.y, width: L.hyp.w, height: L.hyp.h, rx: 14, class: "hyp" }, gHyp);
    const title = svgText(gCells, L.hyp.x + 16, L.hyp.y + 32, "Gunyah hypervisor", "hyp-title");
    if (L.caption) { // the RPC caption starts where the title ends
      const end = L.hyp.x + 16 + title.getComputedTextLength() + 2 * PAD;
      L.caption = { ...L.caption, x: end, w: L.caption.x + L.caption.w - end };
    }
    for (const [key, link] of L.links) {
      const path = svg("path", { d: link.d, class: `link link-${link.role}${link.rm ? " link-rm" : ""}`, "data-link": key }, gLinks);
      const flash = svg("path", { d: link.d, class: "link-flash", opacity: 0 }, gLinks);
      this.links.set(key, { path, flash, length: null, link });
    }
    // A folded queue's messages travel the marker's one link, both ways.
    for (const [key, vm] of L.folded) {
      const marker = this.links.get(`rmlink:${vm}`);
      if (marker) for (const role of ["tx", "rx"]) this.links.set(`${key}:${role}`, marker);
    }
    this.markers = new Map();
    for (const m of L.markers.values()) this.buildMarker(gCells, m);
    snap.vms.forEach((vm, i) => {
      if (!L.vms.has(vm.name)) return;
      this.buildVm(gVms, vm, L.vms.get(vm.name), L.vmFont);
      this.vmKey(gVms, L.vms.get(vm.name), i);
    });
    for (const cell of L.cells.values()) this.buildCell(gCells, cell);
    this.buildLanes(gLanes, L);
    this.caption = buildCaption(gCaption, L.caption);
  }

  buildVm(parent, vm, box, font) {
    const node = buildVmBox(parent, vm, box, font);
    const g = node.g;
    const chips = [];
    for (const c of box.chips) {
      const cg = svg("g", { class: "vcpu", "data-vcpu": c.id }, g);
      const r = svg("rect", { x: c.x, y: c.y, width: c.w, height: c.h, rx: 7, class: "chip" }, cg);
      // A VM whose program uses the timer: two lines, the state over the timer.
      const y = c.timer ? c.y + CHIP_LINE1 : c.y + c.h / 2 + 6;
      const label = svgText(cg, c.x + 8, y, `v${c.id.split(".").pop()}`, "chip-id");
      const state = svgText(cg, c.x + c.w / 2 + 2, y, "", c.timer ? "chip-state two" : "chip-state", "middle");
      const prio = svgText(cg, c.x + c.w - 6, y, "", "chip-prio", "end");
      const timer = c.timer ? svgText(cg, c.x + c.w / 2, c.y + CHIP_LINE2, "", "chip-timer", "middle") : null;
      if (timer) setAttr(timer, "data-testid", `vtimer-${c.id}`);
      this.chips.set(c.id, { g: cg, rect: r, label, state, prio, timer, box: c });
      chips.push(c.id);
    }
    const pulse = svg("rect", { x: box.x - 4, y: box.y - 4, width: box.w + 8, height: box.h + 8,
      rx: 15, class: "pulse", opacity: 0 }, g);
    this.vms.set(vm.name, { ...node, chips, pulse, badge: badge(g, box.x + box.w - 10, box.y) });
  }

  /** The VM's colour in the pCPU tracks: a strip along the top of its box. */
  vmKey(parent, box, i) {
    svg("rect", { x: box.x + 14, y: box.y + 4, width: box.w - 28, height: 5, rx: 2,
      class: `vm-key ${this.tracks.colourOf(i)}` }, parent);
  }

  /** A VM's folded RM link: one small box; a click draws its two queues. */
  buildMarker(parent, m) {
    const g = svg("g", { class: "rmlink", "data-rmlink": m.vm, "data-testid": `rmlink-${m.vm}`, tabindex: 0,
      role: "button", "aria-label": `RM link of ${m.vm}: show its two queues` }, parent);
    svg("rect", { x: m.x, y: m.y, width: m.w, height: m.h, rx: 8, class: "rmlink-box" }, g);
    const label = svgText(g, m.x + m.w / 2, m.y + m.h / 2 + 6, "", "rmlink-text", "middle");
    fitText(label, "RM link ▸", m.w - 12);
    this.markers.set(m.vm, { g, label, m, queued: new Map() });
  }

  /** A folded RM link's marker counts what waits in its two queues. */
  updateMarker(vm, queue, count) {
    const node = this.markers.get(vm);
    if (!node) return;
    node.queued.set(queue, count);
    const n = [...node.queued.values()].reduce((a, b) => a + b, 0);
    fitText(node.label, n ? `RM link · ${n} ▸` : "RM link ▸", node.m.w - 12);
    setAttr(node.g, "data-count", String(n));
  }

  buildCell(parent, cell) {
    const g = svg("g", { class: `cell cell-${cell.kind}`, [CELL_ATTR[cell.kind]]: cell.obj.name,
      "data-testid": `${cell.kind}-${cell.obj.name}`, tabindex: 0, role: "button",
      "aria-label": `${CELL_WORD[cell.kind]} ${cell.obj.name}` }, parent);
    svg("rect", { x: cell.x, y: cell.y, width: cell.w, height: cell.h, rx: 10, class: "cell-box" }, g);
    const name = svgText(g, cell.x + PAD, cell.y + 34, "", "cell-name");
    const count = svgText(g, cell.x + cell.w - PAD, cell.y + 34, "", "cell-count", "end");
    const route = cell.kind === "msgq" ? `${cell.obj.sender} → ${cell.obj.receiver} · max ${cell.obj.max_size} B`
      : cell.kind === "virtio" ? `${cell.obj.sender} → ${cell.obj.receiver} · virtio ${VIRTIO_DEVICE[cell.obj.device_id] ?? ""}`
      : `${cell.obj.sender} → ${cell.obj.receiver} · doorbell`;
    const routeText = svgText(g, cell.x + PAD, cell.y + 58, "", "cell-route");
    fitText(routeText, route, cell.w - 2 * PAD);
    const node = { g, name, count, cell, routeText, badge: badge(g, cell.x + cell.w - PAD, cell.y) };
    this.fitHead(node, cell.kind === "msgq" ? `${cell.obj.depth} / ${cell.obj.depth}` : "");
    if (cell.kind === "msgq") this.buildSlots(g, node, cell.slots);
    else if (cell.kind === "virtio") this.buildRings(g, node, cell.rings);
    else this.buildBits(g, node, cell.bits);
    node.pulse = svg("rect", { x: cell.x - 4, y: cell.y - 4, width: cell.w + 8, height: cell.h + 8,
      rx: 13, class: "pulse", opacity: 0 }, g);
    this.cells.set(cell.key, node);
  }

  buildSlots(g, node, s) {
    svg("rect", { x: s.x, y: s.y, width: s.w, height: s.h, rx: 4, class: "buffer" }, g);
    node.slots = s.bar ? [] : s.list.map((r) => svg("rect", { x: r.x, y: r.y + 3, width: r.w,
      height: r.h - 6, rx: 3, class: "slot" }, g));
    node.bar = s.bar ? svg("rect", { x: s.x, y: s.y + 3, height: s.h - 6, width: 0, class: "slot filled" }, g) : null;
    node.thd = ["rx", "tx"].map((which) => {
      const tg = svg("g", { class: `thd thd-${which}` }, g);
      return { g: tg, line: svg("line", { y1: s.y - 4, y2: s.y + s.h + 4 }, tg),
        label: svgText(tg, 0, s.y + s.h + 18, "", "thd-label") };
    });
  }

  /** A cell's name (left) and count (right) share the title row: the count is whole
   *  (room kept for its widest value `widest`), the name is cut if it must be. */
  fitHead(node, widest, count = null) {
    const c = node.cell;
    const room = c.w - 2 * PAD;
    const countText = count ?? node.count.textContent;
    const countW = Math.min(room / 2, Math.max(widest ? measure(node.count, widest) : 0,
      countText ? measure(node.count, countText) : 0));
    fitText(node.name, c.obj.name, room - countW - (countW ? GAP : 0));
    if (count != null) fitText(node.count, count, room - node.name.__fitW - GAP);
  }

  /** A virtio device's rings: per queue its available ring (chains the driver put
   *  there for the device) and its used ring (chains the device gave back). */
  buildRings(g, node, rings) {
    const slots = (r, which, q) => {
      const rg = svg("g", { class: `ring ring-${which}`, "data-testid": `ring-${which}-${q}` }, g);
      svg("title", {}, rg).textContent = which === "avail"
        ? `queue ${q}: available ring (driver → device)` : `queue ${q}: used ring (device → driver)`;
      svg("rect", { x: r.x, y: r.y, width: r.w, height: r.h, rx: 4, class: "buffer" }, rg);
      if (r.name) fitText(svgText(rg, r.name.x, r.name.y, "", "ring-label"), r.name.text, r.name.w);
      return { g: rg, list: r.list.map((s) => svg("rect", { x: s.x, y: s.y + 2, width: s.w,
        height: s.h - 4, rx: 2, class: "slot" }, rg)) };
    };
    node.rings = rings.map((row) => {
      const label = svgText(g, row.label.x, row.label.y, "", "ring-label");
      fitText(label, `q${row.queue}`, row.avail.x - row.label.x - 4);
      return { queue: row.queue, avail: slots(row.avail, "avail", row.queue),
        used: slots(row.used, "used", row.queue) };
    });
  }

  buildBits(g, node, bits) {
    node.bits = bits.map((b) => {
      const r = svg("rect", { x: b.x, y: b.y, width: b.w, height: b.h, rx: 4, class: "bit" }, g);
      svgText(g, b.x + b.w / 2, b.y + b.h / 2 + 6, String(b.bit), "bit-num", "middle");
      return r;
    });
  }

  buildLanes(parent, L) {
    const titleY = L.lanesTop + 22;
    svgText(parent, L.lanes[0]?.x ?? 20, titleY, L.lanesTitle, "lanes-title");
    this.lanes = L.lanes.map((lane) => {
      const g = svg("g", { class: "lane", "data-pcpu": lane.pcpu, "data-testid": `pcpu-${lane.pcpu}` }, parent);
      svg("rect", { x: lane.x, y: lane.y, width: lane.w, height: lane.h, rx: 8, class: "lane-box" }, g);
      const mid = lane.y + lane.h / 2 + 7;
      svgText(g, lane.x + 12, mid, `pCPU ${lane.pcpu}`, "lane-label");
      const c = lane.chip;
      const chip = svg("rect", { x: c.x, y: c.y, width: c.w, height: c.h, rx: 7, class: "chip" }, g);
      const cur = svgText(g, c.x + c.w / 2, c.y + c.h / 2 + 7, "", "lane-cur", "middle");
      const runq = svgText(g, lane.runqX, mid, "", "lane-runq");
      return { lane, g, chip, cur, runq };
    });
    this.buildWindowControls(parent, L, titleY);
    this.tracks.build(this.lanes, this.snap.vms.map((v) => v.name));
  }

  /** The tracks' window in the lanes' title row, right: "past 5 ms", narrower and wider. */
  buildWindowControls(parent, L, titleY) {
    const last = L.lanes[L.lanes.length - 1];
    if (!last) return;
    const right = last.x + last.w;
    const button = (x, dir, text, name) => {
      const g = svg("g", { class: "track-zoom", "data-track-zoom": dir, "data-testid": `track-${name}`,
        tabindex: 0, role: "button", "aria-label": `${name} time window (${dir > 0 ? "." : ","})` }, parent);
      svg("rect", { x, y: titleY - 20, width: 34, height: 28, rx: 6, class: "track-zoom-box" }, g);
      svgText(g, x + 17, titleY, text, "track-zoom-text", "middle");
    };
    button(right - 34, 1, "+", "wider");
    button(right - 74, -1, "−", "narrower");
    this.windowLabel = svgText(parent, right - 84, titleY, "", "track-window", "end");
    this.windowLabel.setAttribute("data-testid", "track-window");
    this.updateWindowLabel();
  }

  updateWindowLabel() {
    if (this.windowLabel) setText(this.windowLabel, `tracks: past ${fmtSpan(this.tracks.span)}`);
  }

  /** Rewrite attributes of the nodes state.dirty names; then clear it. */
  update(state) {
    if (!this.layout) return;
    const all = state.dirty.has("all");
    const keys = all ? [...[...state.vms.keys()].flatMap((n) => [`vm:${n}`, `mem:${n}`]), ...[...state.vcpus.keys()]
      .map((v) => `vcpu:${v}`), ...this.cells.keys(), "lanes", "rpc"] : state.dirty;
    for (const key of keys) {
      const [type, ...rest] = key.split(":");
      const name = rest.join(":");
      if (type === "vm") this.updateVm(state, name);
      else if (type === "vcpu") this.updateChip(state.vcpus.get(name));
      else if (type === "msgq") this.updateMsgq(state, name);
      else if (type === "bell") this.updateBell(state, name);
      else if (type === "virtio") this.updateVirtio(state, name);
      else if (type === "lanes") this.updateLanes(state);
      else if (type === "mem") this.updateMem(state, name);
      else if (type === "rpc") updateCaption(this.caption, state.lastRpc, this.motion);
    }
    state.dirty.clear();
  }

  updateVm(state, name) {
    const node = this.vms.get(name);
    const vm = state.vms.get(name);
    if (!node || !vm) return;
    updateVmHead(node, vm, this.layout.narrowVms);
    this.updateBadge(node.badge, state.errors.get(`vm:${name}`));
  }

  updateMem(state, name) {
    const node = this.vms.get(name);
    if (node) updateVmMem(node, state, name, this.motion);
  }

  updateChip(v) {
    const node = v && this.chips.get(v.id);
    if (!node) return;
    const power = v.power;
    setAttr(node.rect, "class", `chip st-${v.state}${power ? ` pw-${power}` : ""}`);
    fitText(node.state, STATE_SHORT[v.state] ?? v.state, node.box.w - (this.layout.narrowVms ? 12 : 2 * CHIP_SIDE_W));
    if (power) {
      setAttr(node.g, "data-power", power);
      setAttr(node.prio, "class", "chip-prio pw");
      setAttr(node.g, "aria-label", `vCPU ${v.id}: power ${power}, ${v.state}, priority ${v.priority}`);
      setText(node.prio, POWER_SHORT[power] ?? power);
    } else {
      setText(node.prio, `p${v.priority}`);
    }
    if (node.timer) {
      const [text, look] = timerLabel(v.vtimer);
      fitText(node.timer, text, node.box.w - 8);
      setAttr(node.timer, "class", `chip-timer tm-${look}`);
    }
  }

  updateBadge(b, err) {
    if (!err) { setAttr(b.g, "visibility", "hidden"); return; }
    const w = Math.max(60, fitText(b.label, err.count > 1 ? `${err.code} ×${err.count}` : err.code,
      BADGE_W_MAX - 16) + 16);
    setAttr(b.rect, "width", w);
    setAttr(b.rect, "x", b.right - w);
    setAttr(b.label, "x", b.right - w + 8);
    setAttr(b.g, "visibility", "visible");
  }

  updateMsgq(state, name) {
    const node = this.cells.get(`msgq:${name}`);
    const q = state.msgqs.get(name);
    const folded = this.layout.folded.get(`msgq:${name}`);
    if (folded && q) this.updateMarker(folded, name, q.count);
    if (!node || !q) return;
    this.fitHead(node, `${q.depth} / ${q.depth}`, `${q.count} / ${q.depth}`);
    setAttr(node.g, "data-count", String(q.count));
    node.slots.forEach((r, i) => setAttr(r, "class", i < q.count ? "slot filled" : "slot"));
    const s = node.cell.slots;
    if (node.bar) setAttr(node.bar, "width", s.w * q.count / q.depth);
    const marks = [[q.notempty_thd, `rx ≥ ${q.notempty_thd}`], [q.notfull_thd, `tx ≤ ${q.notfull_thd}`]];
    const xs = marks.map(([value]) => s.x + s.w * Math.max(0, Math.min(value, q.depth)) / q.depth);
    const items = node.thd.map((t, i) => {
      setAttr(t.line, "x1", xs[i]); setAttr(t.line, "x2", xs[i]);
      const w = fitText(t.label, marks[i][1], s.w / 2 - GAP);
      return { i, x: xs[i], w, anchor: "middle" };
    });
    for (const it of spread(items, s.x, s.x + s.w, GAP)) setAttr(node.thd[it.i].label, "x", it.left);
    this.updateBadge(node.badge, state.errors.get(`msgq:${name}`));
  }

  updateBell(state, name) {
    const node = this.cells.get(`bell:${name}`);
    const b = state.bells.get(name);
    if (!node || !b) return;
    this.fitHead(node, "", `flags ${hex(b.flags)}`);
    node.bits.forEach((r, i) => setAttr(r, "class", `bit${flagBit(b.flags, i) ? " set" : ""}` +
      `${flagBit(b.enable_mask, i) ? "" : " masked"}`));
    fitText(node.routeText, `${b.sender} → ${b.receiver} · enable ${hexMask(b.enable_mask)} · ` +
      `ack ${hexMask(b.ack_mask)}`, node.cell.w - 2 * PAD);
    this.updateBadge(node.badge, state.errors.get(`bell:${name}`));
  }

  /** Reasons waiting for the backend in the title, Status and InterruptStatus under it,
   *  and each ring's occupied slots where the indexes put them (free-running mod num). */
  updateVirtio(state, name) {
    const node = this.cells.get(`virtio:${name}`);
    const v = state.virtio.get(name);
    if (!node || !v) return;
    const reasons = REASONS.filter(([bit]) => v.reason & bit).map(([, n]) => n).join(" ");
    this.fitHead(node, "", reasons || "idle");
    fitText(node.routeText, `${v.frontend} → ${v.backend} · Status ${hex(v.status)} · ISR ${hex(v.isr)}`,
      node.cell.w - 2 * PAD);
    const depths = [];
    for (const ring of node.rings) {
      const q = v.queues[ring.queue];
      const mark = (list, from, count, cls) => {
        for (let k = 0; k < count && k < list.length; k++) setAttr(list[(((from + k) % list.length) + list.length) % list.length], "class", cls);
      };
      for (const r of [...ring.avail.list, ...ring.used.list]) setAttr(r, "class", "slot");
      if (q) {
        mark(ring.avail.list, q.avail_idx - q.avail_depth - q.in_device, q.in_device, "slot held");
        mark(ring.avail.list, q.avail_idx - q.avail_depth, q.avail_depth, "slot filled");
        mark(ring.used.list, q.used_idx - q.used_depth, q.used_depth, "slot filled");
      }
      setAttr(ring.avail.g, "data-count", String(q?.avail_depth ?? 0));
      setAttr(ring.used.g, "data-count", String(q?.used_depth ?? 0));
      depths.push(`q${ring.queue} ${q?.avail_depth ?? 0}/${q?.used_depth ?? 0}`);
    }
    setAttr(node.g, "data-rings", depths.join(" "));
  }

  updateLanes(state) {
    for (const node of this.lanes ?? []) {
      const p = state.pcpus[node.lane.pcpu];
      const cur = p?.current ?? null;
      fitText(node.cur, cur ?? "idle", node.lane.chip.w - 12);
      setAttr(node.chip, "class", cur ? "chip st-running" : "chip st-idle");
      const rq = state.runq(node.lane.pcpu);
      const key = rq.join(" ");
      if (node.rqKey === key) continue;
      node.rqKey = key;
      // As many ready vCPUs as fit, then "+N" for the rest.
      let keep = rq.length;
      const text = (k) => (rq.length ? `ready: ${rq.slice(0, k).join("  ")}${k < rq.length ? `  +${rq.length - k}` : ""}` : "");
      while (keep > 0 && measure(node.runq, text(keep)) > node.lane.runqW) keep--;
      fitText(node.runq, text(keep), node.lane.runqW);
    }
  }

  /** Outline the nodes an event concerns (log selection); keys like "vm:VM_A", "msgq:A_to_B". */
  highlight(keys) {
    for (const el of this.svg.querySelectorAll(".hl")) el.classList.remove("hl");
    for (const key of keys) {
      const [type, name] = key.split(/:(.*)/s);
      const node = type === "vm" ? this.vms.get(name)?.g : this.cells.get(key)?.g ?? this.links.get(key)?.path;
      node?.classList.add("hl");
    }
  }

  /** Where a vCPU chip is drawn (in its VM box), for the context-switch animation. */
  chipBox(vcpuId) { return this.chips.get(vcpuId)?.box ?? null; }
}
