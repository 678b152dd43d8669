// Shareable links and imported timelines. A link carries the preset, the seed, the action
// log (base64url JSON), the head and the view position: the server replays the log and the
// page seeks, so another browser shows the same instant. An imported JSONL timeline
// replays read-only (no model behind it): inputs that would send actions are disabled.
const $ = (id) => document.getElementById(id);
const STEP_ALL = 10000; // sim:step count per request when revealing an imported timeline
const LOCK_ATTR = "data-replay-locked";
const ACTION_BOXES = ".actions, .power"; // inspector parts whose inputs send actions
const ACTION_INPUTS = "button, select, input";
const URL_SYNC_MS = 500; // how often the address bar follows the run (see syncUrl)

/** JSON -> UTF-8 -> base64url without padding (safe in a query string). */
export function encodeActions(actions) {
  let bin = "";
  for (const b of new TextEncoder().encode(JSON.stringify(actions))) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export function decodeActions(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
}

export class Share {
  /** parts: {send, history, controls, toast, session: () => export token, key: () => session key} */
  constructor(parts) {
    Object.assign(this, parts);
    this.presets = new Set();
    this.scenario = null;
    this.imported = null;
    this.replayOnly = false;
    $("share-link").addEventListener("click", () => this.copy());
    $("import").addEventListener("change", (ev) => this.importFile(ev.target));
    new MutationObserver(() => this.lockActions()).observe($("inspector"), { childList: true, subtree: true });
    this.update();
    this.run = null; // {scenario, seed, actions} of this run (sim:link), null if no link rebuilds it
    this.branch = null;
    setInterval(() => this.syncUrl(), URL_SYNC_MS);
    window.addEventListener("pagehide", () => this.syncUrl());
  }

  /** Ask the server what rebuilds this run (after a load, an action or a branch switch). */
  async refreshRun() {
    const ack = await this.send("sim:link", {});
    if (!ack.ok) return;
    this.run = ack.preset ? { scenario: ack.scenario, seed: ack.seed, actions: ack.actions } : null;
    this.syncUrl();
  }

  /** Keep this tab's URL a link to what it shows, so a reload (or the URL pasted in a new tab,
   *  long after the session expired) rebuilds the run at the same position, as a shared link. */
  syncUrl() {
    const lesson = this.lessonLink?.(); // a lesson open: the link to its step
    if (lesson) {
      const url = new URL(lesson);
      if (location.search !== url.search) window.history.replaceState(window.history.state, "", `${location.pathname}${url.search}`);
      return;
    }
    if (!this.run || this.replayOnly) return;
    const q = new URLSearchParams({ scenario: this.run.scenario, seed: String(this.run.seed),
      actions: encodeActions(this.run.actions) });
    if (this.history.head >= 0) { q.set("head", String(this.history.head)); q.set("pos", String(this.history.view)); }
    const search = `?${q}`;
    if (location.search !== search) window.history.replaceState(window.history.state, "", `${location.pathname}${search}`);
  }

  setPresets(presets) { this.presets = new Set(presets.map((p) => p.name)); this.update(); }

  snapshot(snap) {
    this.scenario = snap.scenario?.name ?? null;
    this.imported = snap.scenario?.imported ?? null;
    this.update();
    this.refreshRun();
  }

  status(s) {
    if (s.branch != null && s.branch !== this.branch) { this.branch = s.branch; this.refreshRun(); }
    if (s.replay_only == null || Boolean(s.replay_only) === this.replayOnly) return;
    this.replayOnly = Boolean(s.replay_only);
    this.update();
  }

  update() {
    const btn = $("share-link");
    const ok = this.presets.has(this.scenario) && !this.replayOnly;
    btn.disabled = !ok;
    btn.title = ok ? "Copy a link that rebuilds this run and shows this moment"
      : this.replayOnly ? "An imported timeline has no model to link to"
        : "Links work for preset scenarios only (this one was opened from a file)";
    const badge = $("replay-badge");
    badge.hidden = !this.replayOnly;
    badge.textContent = `replay of ${this.imported ?? "an imported timeline"} · read-only`;
    document.body.classList.toggle("replay-only", this.replayOnly);
    this.lockActions();
  }

  /** In replay mode the inspector's action inputs are disabled (the server refuses anyway). */
  lockActions() {
    const root = $("inspector");
    if (this.replayOnly) {
      for (const box of root.querySelectorAll(ACTION_BOXES)) {
        box.inert = true; // stays unclickable even if the inspector re-enables a button
        box.setAttribute(LOCK_ATTR, "");
        for (const el of box.querySelectorAll(ACTION_INPUTS)) {
          if (!el.disabled) { el.disabled = true; el.setAttribute(LOCK_ATTR, ""); }
        }
      }
    } else {
      for (const el of root.querySelectorAll(`[${LOCK_ATTR}]`)) {
        if ("inert" in el && el.inert) el.inert = false;
        if (el.matches(ACTION_INPUTS)) el.disabled = false;
        el.removeAttribute(LOCK_ATTR);
      }
    }
  }

  async copy() {
    const ack = await this.send("sim:link", {});
    if (!ack.ok) { this.toast(`${ack.error.code}: ${ack.error.message}`); return null; }
    if (!ack.preset) { this.toast("links work for preset scenarios only"); return null; }
    const q = new URLSearchParams({ scenario: ack.scenario, seed: String(ack.seed),
      actions: encodeActions(ack.actions) });
    if (ack.head_seq >= 0) { q.set("head", String(ack.head_seq)); q.set("pos", String(this.history.view)); }
    const url = `${location.origin}${location.pathname}?${q}`;
    $("share-link").dataset.url = url;
    try {
      await navigator.clipboard.writeText(url);
      this.toast("link copied: it rebuilds this run and shows this moment");
    } catch {
      this.toast(`copy this link: ${url}`);
    }
    return url;
  }

  /** Page opened from a link: replay its action log through `head`, then seek to `pos`. */
  async loadFromUrl(params) {
    const payload = { scenario: params.get("scenario") };
    try {
      payload.actions = params.get("actions") ? decodeActions(params.get("actions")) : [];
    } catch {
      this.toast("this link's action log is damaged; loading the scenario without it");
      payload.actions = [];
    }
    if (params.has("seed")) payload.seed = Number(params.get("seed"));
    if (params.has("head")) payload.through_seq = Number(params.get("head"));
    const ack = await this.send("sim:load", payload);
    if (!ack.ok) { this.toast(`${ack.error.code}: ${ack.error.message}`); return ack; }
    this.controls.setPlaying(false);
    if (params.has("pos")) this.history.seek(Number(params.get("pos")));
    return ack;
  }

  showImportError(text) {
    const el = $("import-status");
    el.textContent = text;
    el.hidden = false;
    this.toast(text);
  }

  /** POST a JSONL file, reveal all of it, and show its start. */
  async importFile(input) {
    const file = input.files?.[0];
    if (!file) return;
    input.value = "";
    $("import-status").hidden = true;
    if (this.controls.playing) await this.controls.toggle();
    let res, body = null;
    try {
      res = await fetch(`/import/${encodeURIComponent(this.session())}?name=${encodeURIComponent(file.name)}`,
        { method: "POST", body: file,
          headers: { "Content-Type": "application/x-ndjson", "X-Gunyah-Key": this.key() } });
      body = await res.json();
    } catch (err) {
      this.showImportError(`import of ${file.name} failed: ${err.message}`);
      return;
    }
    if (!res.ok || !body?.ok) {
      const e = body?.error ?? { code: `HTTP ${res.status}`, message: res.statusText };
      this.showImportError(`${file.name} refused: ${e.code}: ${e.message}`);
      return;
    }
    await this.send("sim:snapshot", {}); // after this ack the imported snapshot has been drawn
    for (;;) {
      const ack = await this.send("sim:step", { count: STEP_ALL });
      if (!ack.ok || ack.finished || !ack.revealed) break;
    }
    this.history.seek(this.history.start);
    this.toast(`replay of ${file.name}: ${body.events.toLocaleString("en")} events (read-only)`);
  }
}
