// SVG diagram of the machine, after the pictures in Linux's Documentation/virt/gunyah: VMs on top, the Gunyah
// layer with its queues and doorbells, pCPU lanes below. Nodes are created once per
// scenario; update() only rewrites attributes of what the trace changed.
import { computeLayout } from "./layout.js";
import { svg, svgText, setText, setAttr, hex, hexMask, flagBit } from "./format.js";
import { buildVmBox, updateVmHead, updateVmMem, memPatterns, buildCaption, updateCaption } from "./vmbox.js";

const RUNQ_CHAR_W = 9; // average glyph width of the 16px run-queue text, in viewBox units
const STATE_SHORT = { running: "running", ready: "ready", wfi: "wfi", off: "off" };

function badge(parent, x, y) {
  const g = svg("g", { class: "badge", visibility: "hidden", "data-testid": "error-badge" }, parent);
  const rect = svg("rect", { x, y, rx: 8, height: 30, width: 120 }, g);
  const label = svgText(g, x + 8, y + 21, "", "badge-text");
  return { g, rect, label, x };
}

export class Diagram {
  constructor(svgEl) {
    this.svg = svgEl;
    this.layout = null;
    this.motion = true; // false under prefers-reduced-motion: no flashes
    this.onSelect = () => {};
    svgEl.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && ev.target.closest("[data-vm],[data-msgq],[data-bell]")) ev.target.dispatchEvent(
        new MouseEvent("click", { bubbles: true }));
    });
    svgEl.addEventListener("click", (ev) => {
      const hit = ev.target.closest("[data-vm],[data-msgq],[data-bell]");
      if (!hit) return;
      if (hit.dataset.vm) this.onSelect({ type: "vm", name: hit.dataset.vm });
      else if (hit.dataset.msgq) this.onSelect({ type: "msgq", name: hit.dataset.msgq });
      else this.onSelect({ type: "bell", name: hit.dataset.bell });
    });
  }

  /** Create every node for this snapshot's machine (again after a run-time structure
   *  change; the animation layer is kept so messages in flight are not lost). */
  build(snap) {
    const L = (this.layout = computeLayout(snap));
    const keepFx = this.fx;
    this.svg.replaceChildren();
    memPatterns(this.svg);
    this.svg.setAttribute("viewBox", `0 0 ${L.width} ${L.height}`);
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
    svgText(gCells, L.hyp.x + 16, L.hyp.y + 31, "Gunyah hypervisor", "hyp-title");
    svgText(gCells, L.hyp.x + L.hyp.w - 16, L.hyp.y + 31, L.hiddenRmQueues
      ? `${L.hiddenRmQueues} RM queues not drawn (many VMs); the log still lists their events`
      : "message queues and doorbells are buffered here", "hyp-sub", "end");
    for (const [key, link] of L.links) {
      const path = svg("path", { d: link.d, class: `link link-${link.role}${link.rm ? " link-rm" : ""}`, "data-link": key }, gLinks);
      const flash = svg("path", { d: link.d, class: "link-flash", opacity: 0 }, gLinks);
      this.links.set(key, { path, flash, length: null, link });
    }
    for (const vm of snap.vms) this.buildVm(gVms, vm, L.vms.get(vm.name), L.vmFont);
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
      const label = svgText(cg, c.x + 8, c.y + c.h / 2 + 6, `v${c.id.split(".").pop()}`, "chip-id");
      const state = svgText(cg, c.x + c.w / 2 + 2, c.y + c.h / 2 + 6, "", "chip-state", "middle");
      const prio = svgText(cg, c.x + c.w - 6, c.y + c.h / 2 + 6, "", "chip-prio", "end");
      this.chips.set(c.id, { rect: r, label, state, prio, box: c });
      chips.push(c.id);
    }
    const pulse = svg("rect", { x: box.x - 4, y: box.y - 4, width: box.w + 8, height: box.h + 8,
      rx: 15, class: "pulse", opacity: 0 }, g);
    this.vms.set(vm.name, { ...node, chips, pulse, badge: badge(g, box.x + box.w - 130, box.y - 14) });
  }

  buildCell(parent, cell) {
    const attr = cell.kind === "msgq" ? "data-msgq" : "data-bell";
    const g = svg("g", { class: `cell cell-${cell.kind}`, [attr]: cell.obj.name,
      "data-testid": `${cell.kind}-${cell.obj.name}`, tabindex: 0, role: "button" }, parent);
    svg("rect", { x: cell.x, y: cell.y, width: cell.w, height: cell.h, rx: 10, class: "cell-box" }, g);
    svgText(g, cell.x + 12, cell.y + 30, cell.obj.name, "cell-name");
    const count = svgText(g, cell.x + cell.w - 12, cell.y + 30, "", "cell-count", "end");
    const route = cell.kind === "msgq" ? `${cell.obj.sender} → ${cell.obj.receiver} · max ${cell.obj.max_size} B`
      : `${cell.obj.sender} → ${cell.obj.receiver} · doorbell`;
    const routeText = svgText(g, cell.x + 12, cell.y + 54, route, "cell-route");
    const node = { g, count, cell, routeText, badge: badge(g, cell.x + cell.w - 132, cell.y + 34) };
    if (cell.kind === "msgq") this.buildSlots(g, node, cell.slots);
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
        label: svgText(tg, 0, s.y + s.h + 18, "", "thd-label", "middle") };
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
    svgText(parent, L.lanes[0]?.x ?? 20, L.lanesTop + 24, "Physical CPUs (FPRR scheduler)", "lanes-title");
    this.lanes = L.lanes.map((lane) => {
      const g = svg("g", { class: "lane", "data-pcpu": lane.pcpu, "data-testid": `pcpu-${lane.pcpu}` }, parent);
      svg("rect", { x: lane.x, y: lane.y, width: lane.w, height: lane.h, rx: 8, class: "lane-box" }, g);
      svgText(g, lane.x + 12, lane.y + lane.h / 2 + 7, `pCPU ${lane.pcpu}`, "lane-label");
      const c = lane.chip;
      const chip = svg("rect", { x: c.x, y: c.y, width: c.w, height: c.h, rx: 7, class: "chip" }, g);
      const cur = svgText(g, c.x + c.w / 2, c.y + c.h / 2 + 7, "", "lane-cur", "middle");
      const runq = svgText(g, lane.runqX, lane.y + lane.h / 2 + 7, "", "lane-runq");
      return { lane, chip, cur, runq };
    });
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
    setAttr(node.rect, "class", `chip st-${v.state}`);
    setText(node.state, STATE_SHORT[v.state] ?? v.state);
    setText(node.prio, `p${v.priority}`);
  }

  updateBadge(b, err) {
    if (!err) { setAttr(b.g, "visibility", "hidden"); return; }
    setText(b.label, err.count > 1 ? `${err.code} ×${err.count}` : err.code);
    const w = Math.max(60, b.label.getComputedTextLength() + 16);
    setAttr(b.rect, "width", w);
    setAttr(b.rect, "x", b.x + 120 - w);
    setAttr(b.label, "x", b.x + 128 - w);
    setAttr(b.g, "visibility", "visible");
  }

  updateMsgq(state, name) {
    const node = this.cells.get(`msgq:${name}`);
    const q = state.msgqs.get(name);
    if (!node || !q) return;
    setText(node.count, `${q.count} / ${q.depth}`);
    setAttr(node.g, "data-count", String(q.count));
    node.slots.forEach((r, i) => setAttr(r, "class", i < q.count ? "slot filled" : "slot"));
    const s = node.cell.slots;
    if (node.bar) setAttr(node.bar, "width", s.w * q.count / q.depth);
    const marks = [[q.notempty_thd, `rx ≥ ${q.notempty_thd}`], [q.notfull_thd, `tx ≤ ${q.notfull_thd}`]];
    node.thd.forEach((t, i) => {
      const [value, label] = marks[i];
      const x = s.x + s.w * Math.max(0, Math.min(value, q.depth)) / q.depth;
      setAttr(t.line, "x1", x); setAttr(t.line, "x2", x); setAttr(t.label, "x", x);
      setText(t.label, label);
    });
    this.updateBadge(node.badge, state.errors.get(`msgq:${name}`));
  }

  updateBell(state, name) {
    const node = this.cells.get(`bell:${name}`);
    const b = state.bells.get(name);
    if (!node || !b) return;
    setText(node.count, `flags ${hex(b.flags)}`);
    node.bits.forEach((r, i) => setAttr(r, "class", `bit${flagBit(b.flags, i) ? " set" : ""}` +
      `${flagBit(b.enable_mask, i) ? "" : " masked"}`));
    setText(node.routeText, `${b.sender} → ${b.receiver} · enable ${hexMask(b.enable_mask)} · ` +
      `ack ${hexMask(b.ack_mask)}`);
    this.updateBadge(node.badge, state.errors.get(`bell:${name}`));
  }

  updateLanes(state) {
    for (const node of this.lanes ?? []) {
      const p = state.pcpus[node.lane.pcpu];
      const cur = p?.current ?? null;
      setText(node.cur, cur ?? "idle");
      setAttr(node.chip, "class", cur ? "chip st-running" : "chip st-idle");
      const rq = state.runq(node.lane.pcpu);
      let shown = rq.join("  ");
      const fit = Math.floor(node.lane.runqW / RUNQ_CHAR_W) - "ready: ".length;
      if (shown.length > fit) {
        const keep = rq.filter((_, i) => rq.slice(0, i + 1).join("  ").length <= fit - 6);
        shown = `${keep.join("  ")}  +${rq.length - keep.length}`;
      }
      setText(node.runq, rq.length ? `ready: ${shown}` : "");
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
