// Each VM's memory map (IPA ranges: owned, lent, shared, borrowed, donated-in), kept by
// folding mem.* trace events over the snapshot's `memory`: a lend marks the owner's range
// lent at once (facts §8.2), an accept maps it into the borrower, a release unmaps it, a
// reclaim gives it back. Demand paging (facts §10.2): memextent_donate takes a lent page
// out of its donor's map, addrspace_map brings it into the guest's (mem.extent_donate,
// mem.map), addrspace_unmap takes it away (mem.unmap). Drawn as a strip under each VM box
// and a table in the inspector.
import { html, svg } from "./format.js";

export const MEM_STATES = ["owned", "lent", "shared", "borrowed", "donated-in"];
const LABEL = { owned: "owned", lent: "lent out", shared: "shared", borrowed: "borrowed", "donated-in": "donated in" };
const KIB = 1024;
const MIB = KIB * KIB;
const MIN_SEG_SHARE = 0.22; // even a 4 KiB page gets a readable segment
const STRIP_CHAR_W = 9.8;   // glyph width of the 15px bold strip text, in viewBox units

export function fmtSize(n) {
  if (n >= MIB && n % MIB === 0) return `${n / MIB} MiB`;
  if (n >= KIB && n % KIB === 0) return `${n / KIB} KiB`;
  return `${n} B`;
}
export function fmtAddr(n) { return `0x${Number(n).toString(16)}`; }

/** Remove [base, base+size) from every range of `list`; return the pieces removed. */
function carve(list, base, size) {
  const end = base + size;
  const removed = [];
  for (let i = list.length - 1; i >= 0; i--) {
    const r = list[i];
    const rEnd = r.base + r.size;
    if (rEnd <= base || r.base >= end) continue;
    list.splice(i, 1);
    const lo = Math.max(base, r.base); const hi = Math.min(end, rEnd);
    removed.push({ ...r, base: lo, size: hi - lo, pa: r.pa + (lo - r.base) });
    if (r.base < lo) list.push({ ...r, size: lo - r.base });
    if (hi < rEnd) list.push({ ...r, base: hi, size: rEnd - hi, pa: r.pa + (hi - r.base) });
  }
  return removed;
}

/** Sort by base and join neighbouring owned ranges (as the model reports them), and
 *  neighbouring pages given on demand (no parcel) from the same donor. */
function tidy(list) {
  list.sort((a, b) => a.base - b.base);
  for (let i = list.length - 1; i > 0; i--) {
    const a = list[i - 1]; const b = list[i];
    const same = a.state === b.state && a.rights === b.rights &&
      (a.state === "owned" || (a.handle == null && b.handle == null && a.peer === b.peer && a.peer != null));
    if (same && a.base + a.size === b.base && a.pa + a.size === b.pa) {
      a.size += b.size;
      a.arrived = b.arrived ?? a.arrived;
      list.splice(i, 1);
    }
  }
}

/** Copy a snapshot's memory into a Map vm -> ranges. */
export function memFromSnapshot(memory) {
  const out = new Map();
  for (const [vm, ranges] of Object.entries(memory ?? {})) out.set(vm, ranges.map((r) => ({ ...r })));
  return out;
}

/** Fold one mem.* event into `mem`; return the VMs whose map changed. */
export function foldMem(mem, e) {
  const list = (vm) => { if (!mem.has(vm)) mem.set(vm, []); return mem.get(vm); };
  switch (e.kind) {
    case "mem.lend": case "mem.share": case "mem.donate": {
      const owner = list(e.owner);
      const pieces = carve(owner, e.base, e.size);
      const kept = pieces[0]?.rights ?? "RWX";
      const state = e.kind === "mem.share" ? "shared" : "lent"; // a donation leaves the owner too
      owner.push({ base: e.base, size: e.size, pa: pieces[0]?.pa ?? e.base, handle: e.handle, state,
        rights: state === "shared" ? kept : "NONE", was: kept, peer: e.vm });
      tidy(owner);
      return [e.owner];
    }
    case "mem.accept": {
      const from = mem.get(e.owner)?.find((r) => r.handle === e.handle);
      const into = list(e.vm);
      carve(into, e.base, e.size);
      into.push({ base: e.base, size: e.size, pa: from?.pa ?? e.base, handle: e.handle, rights: e.rights,
        state: e.trans_type === "DONATE" ? "donated-in" : "borrowed", peer: e.owner });
      if (e.trans_type === "DONATE" && mem.has(e.owner)) {
        mem.set(e.owner, mem.get(e.owner).filter((r) => r.handle !== e.handle));
      }
      tidy(into);
      return [e.vm, e.owner];
    }
    case "mem.release": {
      mem.set(e.vm, list(e.vm).filter((r) => !(r.handle === e.handle && r.state !== "lent" && r.state !== "shared")));
      return [e.vm];
    }
    case "mem.reclaim": {
      const owner = list(e.owner);
      for (const r of owner) {
        if (r.handle === e.handle) Object.assign(r, { state: "owned", rights: r.was ?? "RWX", handle: null, peer: null });
      }
      tidy(owner);
      return [e.owner];
    }
    case "mem.extent_donate": { // a lent page leaves its donor's stage-2; a shared one stays
      if (e.kept) return [];
      const owner = list(e.owner);
      const at = owner.find((r) => r.pa <= e.pa && e.pa < r.pa + r.size);
      if (!at) return [];
      carve(owner, at.base + (e.pa - at.pa), e.size);
      tidy(owner);
      return [e.owner];
    }
    case "mem.map": { // the page arrives
      const into = list(e.vm);
      carve(into, e.base, e.size);
      into.push({ base: e.base, size: e.size, pa: e.pa, handle: null, rights: e.rights,
        state: e.state, peer: e.donor, arrived: `pa:${e.pa}` });
      tidy(into);
      return [e.vm];
    }
    case "mem.unmap": {
      carve(list(e.vm), e.base, e.size);
      return [e.vm];
    }
    default:
      return [];
  }
}

/** Segment widths: by sqrt(size) so a page next to 64 KiB is still visible and labelled. */
function segments(ranges, x, w) {
  const weights = ranges.map((r) => Math.sqrt(r.size));
  const total = weights.reduce((a, b) => a + b, 0) || 1;
  const min = w * MIN_SEG_SHARE;
  const raw = weights.map((v) => Math.max(min, w * v / total));
  const scale = w / raw.reduce((a, b) => a + b, 0);
  let at = x;
  return ranges.map((r, i) => { const sw = raw[i] * scale; const s = { r, x: at, w: sw }; at += sw; return s; });
}

function segText(r, w) {
  for (const t of [`${LABEL[r.state]} ${fmtSize(r.size)}`, LABEL[r.state], r.state.split("-")[0], r.state[0].toUpperCase()]) {
    if (t.length * STRIP_CHAR_W + 8 <= w) return t;
  }
  return "";
}

/** Redraw a VM's memory strip (SVG group `g`, geometry `s`); flash the segment of `flashHandle`. */
export function drawStrip(g, s, ranges, flashHandle, motion) {
  g.replaceChildren();
  for (const seg of segments(ranges ?? [], s.x, s.w)) {
    const sg = svg("g", { class: `mseg ms-${seg.r.state}`, "data-state": seg.r.state,
      "data-handle": seg.r.handle ?? "", "data-size": seg.r.size }, g);
    svg("rect", { x: seg.x, y: s.y, width: Math.max(1, seg.w - 2), height: s.h, class: "mseg-fill" }, sg);
    svg("rect", { x: seg.x, y: s.y, width: Math.max(1, seg.w - 2), height: s.h, class: "mseg-pat" }, sg);
    const t = svg("text", { x: seg.x + 5, y: s.y + s.h / 2 + 5, class: "mseg-text" }, sg);
    t.textContent = segText(seg.r, seg.w);
    const title = svg("title", {}, sg);
    title.textContent = `${fmtAddr(seg.r.base)} +${fmtSize(seg.r.size)} ${seg.r.state} ${seg.r.rights}` +
      (seg.r.peer ? ` (${seg.r.state === "borrowed" ? "from" : "to"} ${seg.r.peer})` : "");
    if (flashHandle != null && (seg.r.handle ?? seg.r.arrived) === flashHandle && motion) {
      sg.animate([{ opacity: 1 }, { opacity: 0.25 }, { opacity: 1 }], { duration: 450, iterations: 3 });
    }
  }
}

/** The inspector's memory section: a proportional bar, a legend and one row per range. */
export function memSection(parent) {
  html("h3", {}, "Memory (IPA ranges)", parent);
  const bar = html("div", { class: "membar", "data-testid": "insp-membar" }, null, parent);
  const legend = html("div", { class: "memlegend" }, null, parent);
  for (const st of MEM_STATES) {
    const l = html("span", {}, null, legend);
    html("i", { class: `msw ms-${st}` }, null, l);
    l.append(LABEL[st]);
  }
  const t = html("table", { class: "grid", "data-testid": "insp-mem" }, null, parent);
  const tr = html("tr", {}, null, html("thead", {}, null, t));
  for (const h of ["base", "size", "state", "rights", "parcel"]) html("th", {}, h, tr);
  const body = html("tbody", {}, null, t);
  return (ranges) => {
    const key = JSON.stringify(ranges ?? []);
    if (body.__key === key) return;
    body.__key = key;
    const list = ranges ?? [];
    const total = list.reduce((n, r) => n + Math.sqrt(r.size), 0) || 1;
    bar.replaceChildren(...list.map((r) => {
      const seg = html("span", { class: `ms-${r.state}`, title: `${r.state} ${fmtSize(r.size)}` }, LABEL[r.state]);
      seg.style.flexGrow = String(Math.sqrt(r.size) / total); // CSSOM: the CSP allows no style attributes
      return seg;
    }));
    body.replaceChildren(...list.map((r) => {
      const row = html("tr", { "data-state": r.state });
      for (const c of [fmtAddr(r.base), fmtSize(r.size), LABEL[r.state], r.rights,
        r.handle == null ? (r.peer ? `on demand from ${r.peer}` : "–") : `#${r.handle}${r.peer ? (r.state === "borrowed" || r.state === "donated-in" ? ` from ${r.peer}` : ` to ${r.peer}`) : ""}`]) {
        html("td", {}, c, row);
      }
      return row;
    }));
  };
}
