// Text that keeps to its room: a label longer than the space it has is cut with "…"
// (the whole text stays in its <title> tooltip) rather than shrunk below a size the back
// of a classroom can read, or left to run over its neighbour.
import { svg } from "./format.js";

const ELLIPSIS = "…";
// Widths already measured, by the label's style and text: getComputedTextLength forces a
// style and layout pass, and while playing the same names (a lane's vCPU, its ready list)
// come back every few frames. The diagram's class is in the key (narrow cells use a
// smaller font); cleared when full.
const widths = new Map();
const MAX_WIDTHS = 5000;

function cachedWidth(el, text) {
  const key = `${el.ownerSVGElement?.getAttribute("class") ?? ""}\u0000${el.getAttribute("class")}\u0000${text}`;
  let w = widths.get(key);
  if (w === undefined) {
    el.textContent = text;
    w = el.getComputedTextLength();
    if (widths.size >= MAX_WIDTHS) widths.clear();
    widths.set(key, w);
  }
  return w;
}

/** The text's <title> child (created once), so a cut label can still be read in full. */
function tooltip(el, text) {
  let t = el.__tip;
  if (!t) { t = svg("title", {}, el); el.__tip = t; }
  if (t.textContent !== text) t.textContent = text;
}

/** Set `text` on an SVG <text> and cut it to at most `maxW` viewBox units wide. */
export function fitText(el, text, maxW) {
  const key = `${text}\u0000${Math.round(maxW)}`;
  if (el.__fit === key) return el.__fitW;
  el.__fit = key;
  el.__text = undefined; // setText() in format.js caches by text: let it write again
  let w = text ? cachedWidth(el, text) : 0;
  if (w > maxW) {
    let lo = 0, hi = text.length;
    while (lo < hi) { // longest prefix that fits with the ellipsis
      const mid = Math.ceil((lo + hi) / 2);
      if (cachedWidth(el, text.slice(0, mid) + ELLIPSIS) <= maxW) lo = mid; else hi = mid - 1;
    }
    const cut = lo > 0 ? text.slice(0, lo).trimEnd() + ELLIPSIS : "";
    w = cut ? cachedWidth(el, cut) : 0;
    el.textContent = cut;
    tooltip(el, text);
  } else {
    el.textContent = text;
    if (el.__tip) tooltip(el, "");
  }
  el.__fitW = w;
  return w;
}

/** Natural width of `text` in the style of `el` (a scratch write, then restored). */
export function measure(el, text) {
  const keep = el.textContent;
  const w = cachedWidth(el, text);
  if (el.textContent !== keep) el.textContent = keep;
  return w;
}

/** Place labels on one line at wanted x positions (sorted), each `w` wide and centred or
 *  anchored as given, kept inside [lo, hi] and apart by `gap`: threshold marks. */
export function spread(items, lo, hi, gap) {
  const list = items.map((it) => ({ ...it, left: it.x - (it.anchor === "end" ? it.w : it.anchor === "middle" ? it.w / 2 : 0) }));
  list.sort((a, b) => a.left - b.left);
  for (const it of list) it.left = Math.max(lo, Math.min(hi - it.w, it.left));
  for (let i = 1; i < list.length; i++) { // push right past the previous one
    list[i].left = Math.max(list[i].left, list[i - 1].left + list[i - 1].w + gap);
  }
  const over = list.length ? list[list.length - 1].left + list[list.length - 1].w - hi : 0;
  if (over > 0) { // then back left from the end
    list[list.length - 1].left -= over;
    for (let i = list.length - 2; i >= 0; i--) {
      list[i].left = Math.min(list[i].left, list[i + 1].left - list[i].w - gap);
    }
  }
  return list;
}
