// How the stage is shown: side panels open or folded away (folded by default on a
// projector-sized window), presentation mode (the diagram full-window with the current
// event's caption in large type), the fit button, and which VMs are drawn.
import { captionOf } from "./caption.js";

const ZOOM_STEP = 1.25; // the zoom buttons: as [ and ] (a phone has no keys or wheel)
const COMPACT = "(max-width: 1400px), (max-height: 820px)"; // a classroom projector

/** The words under the diagram in presentation mode for event `e`: its caption. */
export function presentText(e) {
  return e ? captionOf(e) : "";
}

const $ = (id) => document.getElementById(id);

export class StageView {
  constructor(diagram, relayout) {
    this.diagram = diagram;
    this.relayout = relayout;
    this.shownSeq = null;
    this.onPresent = () => {}; // presentation mode entered or left (the lesson player moves)
    this.setPanels(!window.matchMedia(COMPACT).matches);
    $("btn-panels").addEventListener("click", () => this.setPanels(document.body.classList.contains("panels-off")));
    $("btn-present").addEventListener("click", () => this.present());
    $("present-leave").addEventListener("click", () => this.present(false)); // no keyboard needed
    $("btn-fit").addEventListener("click", () => diagram.view.fit());
    $("btn-zoom-in").addEventListener("click", () => diagram.view.zoomBy(ZOOM_STEP));
    $("btn-zoom-out").addEventListener("click", () => diagram.view.zoomBy(1 / ZOOM_STEP));
    $("vm-list").addEventListener("change", (ev) => {
      const box = ev.target.closest("input[data-vm-toggle]");
      if (box) diagram.setHidden(box.dataset.vmToggle, !box.checked);
      if (ev.target.matches("input[data-rm-links]")) diagram.setRmLinks(ev.target.checked);
    });
    // Re-lay out for a new stage width (window resized, panels or presentation toggled).
    let timer = null;
    new ResizeObserver(() => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (diagram.layout && diagram.stageSize() !== diagram.builtFor) relayout();
      }, 100);
    }).observe(diagram.svg);
  }

  setPanels(open) {
    document.body.classList.toggle("panels-off", !open);
    $("btn-panels").setAttribute("aria-pressed", String(open));
  }

  get presenting() { return document.body.classList.contains("presenting"); }

  present(on = !this.presenting) {
    document.body.classList.toggle("presenting", on);
    $("btn-present").setAttribute("aria-pressed", String(on));
    $("present-caption").hidden = !on;
    this.shownSeq = null;
    this.onPresent(on);
  }

  /** Keyboard: p toggles presentation mode; Esc leaves it. True when the key was ours. */
  key(ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return false;
    if (ev.key === "p" || ev.key === "P") { this.present(); return true; }
    if (ev.key === "Escape" && this.presenting) { this.present(false); return false; }
    return false;
  }

  /** The VM list (check to draw, uncheck to hide), after a load or a structure change. */
  setVms(names) {
    const list = $("vm-list");
    const key = `${names.join()}|${this.diagram.unfolded === "all"}`;
    if (list.dataset.names === key) return;
    list.dataset.names = key;
    const rm = document.createElement("label");
    const all = document.createElement("input");
    all.type = "checkbox";
    all.dataset.rmLinks = "all";
    all.checked = this.diagram.unfolded === "all";
    rm.className = "rm-all";
    rm.append(all, " every RM link's two queues");
    list.replaceChildren(rm, ...names.map((n) => {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.dataset.vmToggle = n;
      box.checked = !this.diagram.hidden.has(n);
      label.append(box, ` ${n}`);
      return label;
    }));
  }

  /** Each frame: the caption of the event at the view, when presenting. */
  frame(seq, eventAt) {
    if (!this.presenting || seq === this.shownSeq) return;
    this.shownSeq = seq;
    $("present-text").textContent = presentText(eventAt(seq)) || "—";
  }
}
