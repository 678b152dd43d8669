// An event's sentence, as the server's gunyah_core/captions.py wrote it (the one source
// of the words: the server sends `captions` beside each sim:trace batch and sim:events
// page, and the page keeps each on its event as `caption`). Nothing here words an event.
import { html } from "./format.js";

/** The caption of a trace event (its kind and seq until the server's words arrive). */
export function captionOf(e) {
  if (!e) return "";
  return e.caption ?? `${e.kind} #${e.seq}`;
}

/** Put a batch's or page's `captions` on its events (same order, same length). */
export function attachCaptions(events, captions) {
  if (!Array.isArray(captions)) return;
  for (let i = 0; i < events.length && i < captions.length; i++) events[i].caption = captions[i];
}

/** The event without the page's own fields, as the server sent it (for sim:explain). */
export function bareEvent(e) {
  const { caption: _caption, ...rest } = e;
  return rest;
}

/** The caption bar: the current event's sentence in large type. */
export class CaptionBar {
  constructor(el) {
    this.el = el;
    this.seq = null;
    this.text = html("span", { class: "cap-text", "data-testid": "caption-text" }, "", el);
  }

  /** Show the event the view stands on (cheap when it has not changed). */
  show(e) {
    const seq = e ? e.seq : null;
    const text = captionOf(e);
    if (seq === this.seq && text === this.text.textContent) return;
    this.seq = seq;
    this.el.dataset.seq = seq ?? "";
    this.text.textContent = text || "Step or play to see what happens, one event at a time.";
  }
}
