// Geometry of the diagram (viewBox units), computed once per scenario shape and view width:
// VMs along the top (wrapping into rows), the hypervisor layer with one cell per
// message queue or doorbell, the links between them, and the pCPU lanes at the bottom.
// The width follows the stage's CSS width, so one viewBox unit is about one CSS pixel
// and the type keeps its size on a small projector. Each VM's RM link (two queues) is
// folded into one marker unless unfolded; hidden VMs and their objects are left out.

export const WIDTH = 2400; // the widest layout: a tall picture on a wide, short stage is laid out up to this
export const MIN_WIDTH = 900;
// A stage narrower than this is a phone's: laid out at its own width (two VMs a row, one
// column of queues and of pCPU lanes), a viewBox unit still a CSS pixel, so every label
// keeps its size; the picture is then taller than the screen and pans (viewport.js).
export const PHONE_WIDTH = 640;
const MIN_PHONE_WIDTH = 320;
// The smallest label's font size in viewBox units (app.css: .chip-id, .vm-state-text ...),
// and the size no label may be drawn under: a picture that would be scaled below it to fit
// the stage (16 VMs on a 1280×720 projector) is laid out for the stage's width and pans.
export const MIN_LABEL_UNITS = 15;
export const LEGIBLE_PX = 12;
const PHONE_VMS_PER_ROW = 2;
const PHONE_LANE_LABEL_W = 88; // "pCPU 0" in bold, and a gap
const PHONE_LANE_CHIP_W = 104;
const RM_VM = "RM"; // the Resource Manager VM's name in every scenario
const MARGIN = 20;
const VM_GAP = 18;
const VMS_PER_ROW_MAX = 6;
const VMS_PER_ROW_WIDE = 9;
const VM_MIN_W = 120; // "RUNNING" and a vCPU chip's state still fit
const VM_HEAD_H = 82; // name row, then the state badge and the sub line
const CHIP_ROW_H = 42;
const CHIPS_PER_ROW = 4;
const CHIP_W_MAX = 190;
const MEM_STRIP_H = 24; // the VM's memory map, under its vCPUs
const MEM_STRIP_PAD = 8;
const STATE_BADGE_Y = 50;
const STATE_BADGE_H = 26;
const CAPTION_H = 34;
const CAPTION_HEADER_X = 270; // right of the "Gunyah hypervisor" title
const LINK_SPACE = 56;
const HYP_HEAD_H = 56; // title row, and room for a cell's error badge over its top edge
const MARKER_H = 30;   // a folded RM link
const MARKER_W = 150;
const MARKER_ROW_H = MARKER_H + 22;
const CELL_MIN_W = 230;
const CELL_MIN_W_MANY = 200;
const MANY_CELLS = 8;
const NARROW_VM_W = 300;
const NARROW_CELL_W = 300;
const CELL_GAP = 16;
const CELL_H = 124;
const BUF_Y = 66;
const BUF_H = 32;
const SLOTS_DRAWN_MAX = 24; // deeper queues draw a proportional bar instead of slots
const RINGS_SHOWN = 2;      // a virtio cell draws its first two queues' rings
const RING_Y = 66;          // under the route line, as a queue's buffer
const RING_AREA_H = 52;
const RING_LABEL_W = 34;    // "q0"
const RING_GAP = 14;        // between the available and the used ring
const RING_NAME_W = 62;     // "avail" / "used" before each ring, when the cell is wide
const RING_NAMED_MIN_W = 520;
const LINK_END_LEFT = 0.22;
const LINK_END_RIGHT = 0.78;
const LANE_H = 46;
const LANES_PER_COL = 4;
const LANE_HEAD_H = 30;
const LANES_GAP = 14;
const LANE_LABEL_W = 96;
const LANE_CHIP_W = 170;
const LANE_RUNQ_W = 190; // the ready list, right of the track
const TRACK_MIN_W = 80;
const LANE_MIN_W = LANE_LABEL_W + LANE_CHIP_W + LANE_RUNQ_W + 2 * 12 + TRACK_MIN_W;
const TRACK_GAP = 12;
const TRACK_INSET = 7; // the track's marks stand out of it, inside the lane

function vmBoxes(snap, width, phone) {
  const n = snap.vms.length;
  // Up to 6 VMs a row; many VMs pack two rows (9 a row for 18) to keep the picture wide.
  // ... and never so many a row that a box is narrower than VM_MIN_W.
  const fit = Math.max(1, Math.floor((width - 2 * MARGIN + VM_GAP) / (VM_MIN_W + VM_GAP)));
  const rows = phone ? Math.ceil(n / PHONE_VMS_PER_ROW)
    : Math.max(Math.ceil(n / fit), n <= VMS_PER_ROW_MAX ? 1 : Math.max(2, Math.ceil(n / VMS_PER_ROW_WIDE)));
  const perRow = Math.ceil(n / rows);
  const boxW = (width - 2 * MARGIN - (perRow - 1) * VM_GAP) / perRow;
  const chipRows = Math.max(...snap.vms.map((v) => Math.ceil(v.vcpus.length / CHIPS_PER_ROW)));
  const boxH = VM_HEAD_H + chipRows * CHIP_ROW_H + MEM_STRIP_H + MEM_STRIP_PAD + 8;
  const boxes = new Map();
  snap.vms.forEach((vm, i) => {
    const row = Math.floor(i / perRow);
    const col = i % perRow;
    const inRow = Math.min(perRow, n - row * perRow);
    const offset = (perRow - inRow) * (boxW + VM_GAP) / 2; // centre a short last row
    const x = MARGIN + offset + col * (boxW + VM_GAP);
    const y = MARGIN + row * (boxH + VM_GAP);
    const perChipRow = Math.min(CHIPS_PER_ROW, vm.vcpus.length);
    const chipW = Math.min(CHIP_W_MAX, (boxW - 16 - (perChipRow - 1) * 6) / perChipRow);
    const chips = vm.vcpus.map((v, k) => ({
      id: v.id,
      x: x + 8 + (k % CHIPS_PER_ROW) * (chipW + 6),
      y: y + VM_HEAD_H + Math.floor(k / CHIPS_PER_ROW) * CHIP_ROW_H,
      w: chipW, h: CHIP_ROW_H - 6,
      timer: Boolean(vm.uses_timer), // a second line in the chip: its virtual timer
    }));
    boxes.set(vm.name, { x, y, w: boxW, h: boxH, cx: x + boxW / 2, chips, kind: vm.kind, row,
      state: { x: x + 10, y: y + STATE_BADGE_Y, w: boxW - 20, h: STATE_BADGE_H },
      mem: { x: x + 8, y: y + boxH - MEM_STRIP_H - MEM_STRIP_PAD, w: boxW - 16, h: MEM_STRIP_H } });
  });
  return { boxes, bottom: MARGIN + rows * (boxH + VM_GAP) - VM_GAP, boxW, rows };
}

/** The non-RM end of an RM link queue, or null for a guest-to-guest object. */
export function rmPeer(obj) {
  if (obj.sender === RM_VM) return obj.receiver;
  if (obj.receiver === RM_VM) return obj.sender;
  return null;
}

/** One marker per VM whose RM link is folded, under its box at the top of the hypervisor. */
function markers(folded, boxes, top) {
  const out = new Map();
  for (const vm of folded) {
    const box = boxes.get(vm);
    if (!box) continue;
    const w = Math.min(MARKER_W, box.w - 8);
    out.set(vm, { vm, x: box.cx - w / 2, y: top, w, h: MARKER_H });
  }
  return out;
}

function cells(items, boxes, top, width) {
  const viaRm = (it) => (rmPeer(it.obj) ? 1 : 0);
  const minW = items.length > MANY_CELLS ? CELL_MIN_W_MANY : CELL_MIN_W;
  const centre = (it) => ((boxes.get(it.obj.sender)?.cx ?? 0) + (boxes.get(it.obj.receiver)?.cx ?? 0)) / 2;
  // Guest-to-guest objects first, so their links reach the first row without crossing cells.
  items.sort((a, b) => viaRm(a) - viaRm(b) || centre(a) - centre(b));
  const innerW = width - 2 * MARGIN - 2 * CELL_GAP;
  const cols = Math.max(1, Math.min(items.length, Math.floor((innerW + CELL_GAP) / (minW + CELL_GAP))));
  const cellW = (innerW - (cols - 1) * CELL_GAP) / cols;
  const rows = Math.max(1, Math.ceil(items.length / cols));
  const out = new Map();
  items.forEach((it, i) => {
    const row = Math.floor(i / cols);
    const inRow = Math.min(cols, items.length - row * cols);
    const offset = (cols - inRow) * (cellW + CELL_GAP) / 2;
    const x = MARGIN + CELL_GAP + offset + (i % cols) * (cellW + CELL_GAP);
    const y = top + HYP_HEAD_H + row * (CELL_H + CELL_GAP);
    const cell = { ...it, x, y, w: cellW, h: CELL_H };
    if (it.kind === "msgq") cell.slots = slotGeometry(it.obj.depth, x + 12, y + BUF_Y, cellW - 24, BUF_H);
    else if (it.kind === "virtio") cell.rings = ringGeometry(it.obj, x + 12, y + RING_Y, cellW - 24);
    else cell.bits = bitGeometry(x + 12, y + BUF_Y, cellW - 24, BUF_H);
    out.set(it.key, cell);
  });
  return { cells: out, bottom: items.length ? top + HYP_HEAD_H + rows * (CELL_H + CELL_GAP) + 4 : top + HYP_HEAD_H };
}

function slotGeometry(depth, x, y, w, h) {
  if (depth > SLOTS_DRAWN_MAX) return { bar: true, x, y, w, h, depth };
  const sw = w / depth;
  return { bar: false, x, y, w, h, depth,
    list: Array.from({ length: depth }, (_, i) => ({ x: x + i * sw + 2, y, w: sw - 4, h })) };
}

/** A virtio cell: per queue (the first RINGS_SHOWN) its label, then its available ring
 *  and its used ring side by side, one slot per descriptor (virtio 1.1 §2.6); a wide
 *  cell names them ("avail", "used") before each. */
function ringGeometry(dev, x, y, w) {
  const shown = Math.max(1, Math.min(RINGS_SHOWN, dev.vqs_num));
  const rowH = (RING_AREA_H - (shown - 1) * 4) / shown;
  const num = Math.max(1, dev.ring_size);
  const nameW = w >= RING_NAMED_MIN_W ? RING_NAME_W : 0;
  const ringW = (w - RING_LABEL_W - RING_GAP - 2 * nameW) / 2;
  const ring = (rx, ry, name) => {
    const sw = ringW / num;
    return { x: rx + nameW, y: ry, w: ringW, h: rowH, name: nameW ? { x: rx, y: ry + rowH / 2 + 6, w: nameW - 6, text: name } : null,
      list: Array.from({ length: num }, (_, i) => ({ x: rx + nameW + i * sw + 1, y: ry, w: Math.max(1, sw - 2), h: rowH })) };
  };
  return Array.from({ length: shown }, (_, q) => {
    const ry = y + q * (rowH + 4);
    return { queue: q, label: { x, y: ry + rowH / 2 + 6 },
      avail: ring(x + RING_LABEL_W, ry, "avail"),
      used: ring(x + RING_LABEL_W + nameW + ringW + RING_GAP, ry, "used") };
  });
}

export const BITS_SHOWN = 8;

function bitGeometry(x, y, w, h) {
  const bw = Math.min(44, w / BITS_SHOWN);
  return Array.from({ length: BITS_SHOWN }, (_, i) => ({ bit: i, x: x + i * bw + 2, y, w: bw - 4, h }));
}

/** Each link runs from a VM's bottom edge to the top of a cell (sender left, receiver right). */
function links(boxes, cellMap, markerMap) {
  const ends = new Map(); // vm -> [{key, tx}]
  const raw = [];
  for (const m of markerMap.values()) {
    const link = { key: `rmlink:${m.vm}`, vm: m.vm, role: "tx", rm: true, marker: m.vm, end: { x: m.x + m.w / 2, y: m.y } };
    raw.push(link);
    if (!ends.has(m.vm)) ends.set(m.vm, []);
    ends.get(m.vm).push(link);
  }
  for (const cell of cellMap.values()) {
    const senderLeft = (boxes.get(cell.obj.sender)?.cx ?? 0) <= (boxes.get(cell.obj.receiver)?.cx ?? 0);
    for (const [role, vm] of [["tx", cell.obj.sender], ["rx", cell.obj.receiver]]) {
      if (!boxes.has(vm)) continue;
      const left = (role === "tx") === senderLeft;
      const at = { x: cell.x + cell.w * (left ? LINK_END_LEFT : LINK_END_RIGHT), y: cell.y };
      const rm = cell.obj.sender === RM_VM || cell.obj.receiver === RM_VM;
      const link = { key: `${cell.key}:${role}`, vm, role, rm, cell: cell.key, end: at };
      raw.push(link);
      if (!ends.has(vm)) ends.set(vm, []);
      ends.get(vm).push(link);
    }
  }
  for (const [vm, list] of ends) {
    const box = boxes.get(vm);
    list.sort((a, b) => a.end.x - b.end.x);
    list.forEach((link, i) => {
      link.start = { x: box.x + box.w * (i + 1) / (list.length + 1), y: box.y + box.h };
    });
  }
  const out = new Map();
  for (const l of raw) {
    const midY = (l.start.y + l.end.y) / 2;
    l.d = `M${l.start.x},${l.start.y} C${l.start.x},${midY} ${l.end.x},${midY} ${l.end.x},${l.end.y}`;
    out.set(l.key, l);
  }
  return out;
}

function lanes(count, top, width, phone) {
  // Up to 4 lanes a column, as many columns as leave each lane room for its track.
  const fit = Math.max(1, Math.floor((width - 2 * MARGIN + CELL_GAP) / (LANE_MIN_W + CELL_GAP)));
  const cols = phone ? 1 : Math.min(Math.ceil(count / LANES_PER_COL), fit);
  const perCol = Math.ceil(count / cols);
  // A phone's lane: its name, the running vCPU and the track; no room for the ready list.
  const labelW = phone ? PHONE_LANE_LABEL_W : LANE_LABEL_W;
  const chipW = phone ? PHONE_LANE_CHIP_W : LANE_CHIP_W;
  const runqW = phone ? 0 : LANE_RUNQ_W;
  const colW = (width - 2 * MARGIN - (cols - 1) * CELL_GAP) / cols;
  const out = [];
  for (let p = 0; p < count; p++) {
    const col = Math.floor(p / perCol);
    const x = MARGIN + col * (colW + CELL_GAP);
    const y = top + LANE_HEAD_H + (p % perCol) * LANE_H;
    const trackX = x + labelW + chipW + TRACK_GAP;
    const trackW = colW - labelW - chipW - runqW - (phone ? 1 : 2) * TRACK_GAP;
    out.push({ pcpu: p, x, y, w: colW, h: LANE_H - 6,
      chip: { x: x + labelW, y: y + 4, w: chipW, h: LANE_H - 14 },
      // The recent past (tracks.js) between the current vCPU and the ready list.
      track: { x: trackX, y: y + TRACK_INSET, w: trackW, h: LANE_H - 6 - 2 * TRACK_INSET },
      runqX: trackX + trackW + TRACK_GAP, runqW: Math.max(0, runqW - TRACK_GAP) });
  }
  return { lanes: out, bottom: top + LANE_HEAD_H + perCol * LANE_H };
}

/** Where the caption of the latest RM RPC goes: in the hypervisor layer's title row,
 *  right of its title, where no other label is. */
function rmCaption(vm, hypTop, width) {
  if (!vm.boxes.get(RM_VM)) return null;
  return { x: MARGIN + CAPTION_HEADER_X, y: hypTop + 8, w: width - 2 * MARGIN - CAPTION_HEADER_X - 12, h: CAPTION_H };
}

/** Full geometry for a snapshot. opts: {width, unfolded: Set of VMs (or "all") whose RM link
 *  queues are drawn, hidden: Set of VMs left out with their objects}. */
export function computeLayout(snap, opts = {}) {
  const phone = (opts.width ?? WIDTH) < PHONE_WIDTH;
  const W = Math.round(phone ? Math.max(MIN_PHONE_WIDTH, opts.width)
    : Math.max(opts.minWidth ?? MIN_WIDTH, Math.min(WIDTH, opts.width ?? WIDTH)));
  const hidden = opts.hidden ?? new Set();
  const unfolded = opts.unfolded ?? new Set();
  const shown = (name) => !hidden.has(name);
  const view = { ...snap, vms: snap.vms.filter((v) => shown(v.name)) };
  let items = [
    ...snap.msgqs.map((q) => ({ key: `msgq:${q.name}`, kind: "msgq", obj: q })),
    ...snap.doorbells.map((b) => ({ key: `bell:${b.name}`, kind: "bell", obj: b })),
    // A virtio device sits between its frontend (the sender side) and its backend.
    ...(snap.virtio_mmios ?? []).map((v) => ({ key: `virtio:${v.name}`, kind: "virtio",
      obj: { ...v, sender: v.frontend, receiver: v.backend } })),
  ].filter((it) => shown(it.obj.sender) && shown(it.obj.receiver));
  const folded = new Map(); // object key -> the VM whose RM link marker stands for it
  for (const it of items) {
    const peer = rmPeer(it.obj);
    if (peer && unfolded !== "all" && !unfolded.has(peer)) folded.set(it.key, peer);
  }
  items = items.filter((it) => !folded.has(it.key));
  const vm = vmBoxes(view, W, phone);
  const hypTop = vm.bottom + LINK_SPACE;
  // One row of markers fits one row of VMs; with more, the RM links are not drawn at all
  // (their events are still in the log), as many VMs would bury the guests' own queues.
  const marks = markers(vm.rows > 1 ? new Set() : new Set(folded.values()), vm.boxes, hypTop + HYP_HEAD_H);
  const cellTop = hypTop + (marks.size ? MARKER_ROW_H : 0);
  const hyp = cells(items, vm.boxes, cellTop, W);
  const lanesTop = hyp.bottom + LANES_GAP;
  const lane = lanes(snap.pcpus.length, lanesTop, W, phone);
  return {
    width: W,
    phone,
    lanesTitle: phone ? "pCPUs" : "Physical CPUs (FPRR scheduler)",
    height: lane.bottom + MARGIN,
    vms: vm.boxes,
    vmFont: Math.max(18, Math.min(30, vm.boxW / 9)),
    narrowVms: vm.boxW < NARROW_VM_W,
    narrowCells: [...hyp.cells.values()].some((c) => c.w < NARROW_CELL_W),
    hyp: { x: MARGIN, y: hypTop, w: W - 2 * MARGIN, h: hyp.bottom - hypTop },
    cells: hyp.cells,
    markers: marks,
    folded,
    links: links(vm.boxes, hyp.cells, marks),
    lanes: lane.lanes,
    lanesTop,
    caption: phone ? null : rmCaption(vm, hypTop, W), // a phone reads the caption bar
  };
}
