// Zoom and pan of the diagram: the SVG's viewBox is a window onto the laid-out picture.
// "Fit" shows all of it; the wheel zooms about the pointer, a drag pans, and keys do both
// ([ and ] zoom, 0 fits, shift + arrows pan). Zooming never goes below fit.

const ZOOM_MAX = 6;
const WHEEL_RATE = 0.0015; // zoom factor per wheel delta unit (exponential)
const KEY_ZOOM = 1.25;
const KEY_PAN = 0.12;      // a shift+arrow moves the view this share of its width/height
const DRAG_MIN_PX = 5;     // less than this between press and release is a click

export class Viewport {
  constructor(svgEl) {
    this.svg = svgEl;
    this.base = { w: 1, h: 1 };
    this.k = 1;
    this.cx = 0.5; this.cy = 0.5;
    this.dragged = false;
    this.fitWidth = false; // a phone: "fit" fills the stage's width and pans up and down
    svgEl.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      this.zoomBy(Math.exp(-ev.deltaY * WHEEL_RATE), this.toView(ev.clientX, ev.clientY));
    }, { passive: false });
    svgEl.addEventListener("pointerdown", (ev) => {
      if (ev.button !== 0) return;
      this.press = { x: ev.clientX, y: ev.clientY, cx: this.cx, cy: this.cy, id: ev.pointerId };
      this.dragged = false;
    });
    svgEl.addEventListener("pointermove", (ev) => {
      const p = this.press;
      if (!p || p.id !== ev.pointerId) return;
      const dx = ev.clientX - p.x, dy = ev.clientY - p.y;
      if (!this.dragged && Math.hypot(dx, dy) < DRAG_MIN_PX) return;
      if (!this.dragged) svgEl.setPointerCapture?.(ev.pointerId);
      this.dragged = true;
      const s = this.scale();
      this.cx = p.cx - dx / s; this.cy = p.cy - dy / s;
      this.apply();
    });
    const release = () => { this.press = null; };
    svgEl.addEventListener("pointerup", release);
    svgEl.addEventListener("pointercancel", release);
  }

  /** A new picture: show all of it. The same picture again (the stage's height changed,
   *  e.g. a flag under the diagram came or went while playing) keeps the zoom and pan. */
  setBase(w, h) {
    const same = this.base.w === w && this.base.h === h && this.laidOut;
    this.base = { w, h };
    this.laidOut = true;
    if (same) this.apply(); else this.fit();
  }

  fit() {
    this.k = 1;
    this.cx = this.base.w / 2; this.cy = this.fitWidth ? 0 : this.base.h / 2; // a phone starts at the top
    this.apply();
  }

  /** The visible window at this zoom, in viewBox units: all of the picture ("meet"), or on
   *  a phone its full width and as much of its height as the stage's shape shows. */
  span() {
    const w = this.base.w / this.k;
    if (!this.fitWidth) return { w, h: this.base.h / this.k };
    const r = this.svg.getBoundingClientRect();
    const aspect = r.width > 0 && r.height > 0 ? r.height / r.width : this.base.h / this.base.w;
    return { w, h: Math.min(this.base.h / this.k, w * aspect) };
  }

  get zoomed() { return this.k > 1; }

  /** CSS pixels per viewBox unit at this zoom (the SVG keeps its aspect: "meet"). */
  scale() {
    const r = this.svg.getBoundingClientRect();
    const { w, h } = this.span();
    return Math.min(r.width / w, r.height / h) || 1;
  }

  /** Client (CSS pixel) coordinates to viewBox units. */
  toView(x, y) {
    const m = this.svg.getScreenCTM();
    if (!m) return { x: this.cx, y: this.cy };
    const p = new DOMPoint(x, y).matrixTransform(m.inverse());
    return { x: p.x, y: p.y };
  }

  /** Zoom by `f` keeping the point `at` (viewBox units) where it is on screen. */
  zoomBy(f, at = { x: this.cx, y: this.cy }) {
    const k = Math.max(1, Math.min(ZOOM_MAX, this.k * f));
    const g = this.k / k; // how much the visible span grows
    this.cx = at.x + (this.cx - at.x) * g;
    this.cy = at.y + (this.cy - at.y) * g;
    this.k = k;
    this.apply();
  }

  pan(fx, fy) {
    const { w, h } = this.span();
    this.cx += fx * w;
    this.cy += fy * h;
    this.apply();
  }

  apply() {
    const { w, h } = this.span();
    // Keep the window on the picture.
    this.cx = Math.max(w / 2, Math.min(this.base.w - w / 2, this.cx));
    this.cy = Math.max(h / 2, Math.min(this.base.h - h / 2, this.cy));
    const box = [this.cx - w / 2, this.cy - h / 2, w, h].map((v) => Math.round(v * 100) / 100);
    this.svg.setAttribute("viewBox", box.join(" "));
    this.svg.classList.toggle("zoomed", this.k > 1);
  }

  /** Keyboard: true when the key was ours. */
  key(ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return false;
    const pans = { ArrowLeft: [-KEY_PAN, 0], ArrowRight: [KEY_PAN, 0], ArrowUp: [0, -KEY_PAN], ArrowDown: [0, KEY_PAN] };
    if (ev.shiftKey && pans[ev.key]) { this.pan(...pans[ev.key]); return true; }
    if (ev.key === "]") { this.zoomBy(KEY_ZOOM); return true; }
    if (ev.key === "[") { this.zoomBy(1 / KEY_ZOOM); return true; }
    if (ev.key === "0") { this.fit(); return true; }
    return false;
  }
}
