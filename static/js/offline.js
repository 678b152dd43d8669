// The server gone: a banner says so while Socket.IO reconnects, and the controls that need
// the server are disabled with a title saying why; all comes back as it was on reconnect.

const NEEDS_SERVER = ["btn-play", "btn-step", "btn-step-n", "btn-step-kind", "btn-reset", "scenario",
  "scenario-file", "speed", "share-link", "step-back"];
const WHY = "the server is not answering: reconnecting";

export class OfflineBanner {
  constructor(doc = document) {
    this.doc = doc;
    this.el = doc.createElement("div");
    this.el.className = "offline-banner";
    this.el.dataset.testid = "offline-banner";
    this.el.setAttribute("role", "alert");
    this.el.hidden = true;
    doc.body.prepend(this.el);
    this.saved = new Map(); // control -> its title before it was disabled
    this.offline = false;
  }

  /** The connection dropped (or a reconnect `attempt` failed): say so, disable controls. */
  down(attempt = 0) {
    this.offline = true;
    this.el.textContent = `The server is not answering. Reconnecting${attempt ? ` (attempt ${attempt})` : ""}…` +
      " Your run is kept and resumes when the server is back.";
    this.el.hidden = false;
    for (const id of NEEDS_SERVER) {
      const c = this.doc.getElementById(id);
      if (!c || this.saved.has(c)) continue;
      this.saved.set(c, { title: c.getAttribute("title"), disabled: c.disabled });
      c.disabled = true;
      c.title = `Unavailable: ${WHY}`;
    }
  }

  /** Connected again: hide the banner, give each control back its state. */
  up() {
    this.offline = false;
    this.el.hidden = true;
    for (const [c, { title, disabled }] of this.saved) {
      c.disabled = disabled;
      if (title == null) c.removeAttribute("title"); else c.title = title;
    }
    this.saved.clear();
  }
}
