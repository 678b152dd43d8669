// An event's sentence, as the server's gunyah_core/teaching/captions.py wrote it (the one source
// of the words: the server sends `captions` beside each sim:trace batch and sim:events
// page, and the page keeps each on its event as `caption`). Nothing here words an event.
import { html } from "./format.js";

/** The caption of a trace event (its kind and seq until the server's words arrive). */
export function captionOf(e) {
  if (!e) return "";
  return e.caption ?? `${e.kind} #${e.seq}`;
}

/** Put a batch's or page's `captions` on its events (same order, same length; a flood's
 * older events have null: `explain` fetches theirs when someone looks). */
export function attachCaptions(events, captions) {
  if (!Array.isArray(captions)) return;
  for (let i = 0; i < events.length && i < captions.length; i++) {
    if (typeof captions[i] === "string") events[i].caption = captions[i];
  }
}

/** The event without the page's own fields, as the server sent it (for sim:explain). */
export function bareEvent(e) {
  const { caption: _caption, ...rest } = e;
  return rest;
}

/** The caption bar: the current event's sentence in large type. */
export class CaptionBar {
  /** explain(event) -> Promise<{caption}|null>: the server's words for an uncaptioned event. */
  constructor(el, explain = null) {
    this.el = el;
    this.explain = explain;
    this.seq = null;
    this.asking = null; // the seq whose caption is being fetched
    this.text = html("span", { class: "cap-text", "data-testid": "caption-text" }, "", el);
  }

  /** Show the event the view stands on (cheap when it has not changed). `playing`: a
   * screen reader is not made to read sixty sentences a second, only the one it stops on. */
  show(e, playing = false) {
    const live = playing ? "off" : "polite";
    if (this.el.getAttribute("aria-live") !== live) this.el.setAttribute("aria-live", live);
    const seq = e ? e.seq : null;
    if (e && e.caption == null && this.explain && this.asking !== seq) this.fetch(e);
    const text = captionOf(e);
    if (seq === this.seq && text === this.text.textContent) return;
    this.seq = seq;
    this.el.dataset.seq = seq ?? "";
    this.text.textContent = text || "Step or play to see what happens, one event at a time.";
  }

  async fetch(e) {
    this.asking = e.seq;
    const info = await this.explain(e);
    if (info && e.caption == null) e.caption = info.caption;
  }
}
