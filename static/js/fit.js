// Text that keeps to its room: a label longer than the space it has is cut with "…"
// (the whole text stays in its <title> tooltip) rather than shrunk below a size the back
// of a classroom can read, or left to run over its neighbour.
import { svg } from "./format.js";

const ELLIPSIS = "…";

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
  el.textContent = text;
  let w = text ? el.getComputedTextLength() : 0;
  if (w > maxW) {
    let lo = 0, hi = text.length;
    while (lo < hi) { // longest prefix that fits with the ellipsis
      const mid = Math.ceil((lo + hi) / 2);
      el.textContent = text.slice(0, mid) + ELLIPSIS;
      if (el.getComputedTextLength() <= maxW) lo = mid; else hi = mid - 1;
    }
    el.textContent = lo > 0 ? text.slice(0, lo).trimEnd() + ELLIPSIS : "";
    w = lo > 0 ? el.getComputedTextLength() : 0;
    tooltip(el, text);
  } else if (el.__tip) tooltip(el, "");
  el.__fitW = w;
  return w;
}

/** Natural width of `text` in the style of `el` (a scratch write, then restored). */
export function measure(el, text) {
  const keep = el.textContent;
  el.textContent = text;
  const w = el.getComputedTextLength();
  el.textContent = keep;
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
