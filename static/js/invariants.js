// Live invariants in the status line: how many checks the model has made on this run's
// events, or the first one that failed, with a button that jumps to its event. The
// server pauses the run when that event is revealed (docs/protocol.md, sim:status).
import { html } from "./format.js";

const TITLE = "Checked on every event: each message received once and in order, queue " +
  "depth, one vCPU per pCPU, every successful hypercall's rights";

export class InvariantsPanel {
  /** status: the status line element; seek(seq): show that event. */
  constructor(status, before, seek) {
    this.root = html("span", { class: "st-item st-inv", "data-testid": "st-invariants", title: TITLE });
    status.insertBefore(this.root, before);
    html("span", { class: "st-label" }, "invariants", this.root);
    this.root.append(" ");
    this.text = html("b", { "data-testid": "inv-text" }, "–", this.root);
    this.go = html("button", { type: "button", class: "small", "data-testid": "inv-goto", hidden: "" }, "show event", this.root);
    this.go.addEventListener("click", () => { if (this.seq != null) seek(this.seq); });
    this.seq = null;
  }

  /** `inv` from sim:status: {checks, by_name, violations, violation} or null (no model). */
  update(inv) {
    if (!inv) { this.text.textContent = "–"; this.go.hidden = true; this.root.classList.remove("bad"); return; }
    const v = inv.violation;
    this.seq = v ? v.seq : null;
    this.root.classList.toggle("bad", Boolean(v));
    this.go.hidden = !v;
    this.text.textContent = v
      ? `✗ ${v.invariant} broken at #${v.seq} (${v.kind}): ${v.message}`
      : `✓ ${inv.checks.toLocaleString("en")} checks`;
  }
}
