// Toolbar and keyboard: play/pause, step, step N, step to next kind, log-scale speed,
// reset, scenario picker and file upload, exports, the help overlay.
import { fmtSpeed } from "./format.js";

const SLIDER_MAX_FINITE = 70;  // 0..70 -> 1e-7 .. 1 simulated s per wall s; 71 = "max"
const SLIDER_DECADE = 10;
const MIN_SPEED_LOG10 = -7;
const KEY_SPEED_STEP = 5;      // +/- move half a decade
const STEP_KINDS = ["msgq.send", "msgq.recv", "virq.assert", "virq.deliver", "bell.send", "bell.recv",
  "sched.switch", "vcpu.state", "vcpu.run", "hvc", "user.action", "rm.rpc", "vm.state", "obj.create",
  "obj.destroy", "mem.lend", "mem.accept", "mem.fault", "mem.page_fault", "mem.map",
  "vtimer.write", "vtimer.fire"];

export function sliderToSpeed(v) {
  return v > SLIDER_MAX_FINITE ? "max" : 10 ** (MIN_SPEED_LOG10 + v / SLIDER_DECADE);
}
export function speedToSlider(speed) {
  if (speed === "max") return SLIDER_MAX_FINITE + 1;
  const v = Math.round((Math.log10(speed) - MIN_SPEED_LOG10) * SLIDER_DECADE);
  return Math.max(0, Math.min(SLIDER_MAX_FINITE, v));
}

const $ = (id) => document.getElementById(id);

export class Controls {
  /** hooks: {onSnapshot(snap), onPlaying(bool), onSpeed(speed), toast(text)}; the history bar
   * adds beforePlay(), stepInHistory(payload) -> handled?, onStepBack(). */
  constructor(send, hooks) {
    this.send = send;
    this.hooks = hooks;
    this.playing = false;
    this.speed = null;
    const kinds = $("step-kind");
    for (const k of STEP_KINDS) kinds.add(new Option(k, k));
    $("btn-play").addEventListener("click", () => this.toggle());
    $("btn-step").addEventListener("click", () => this.step({ count: 1 }));
    $("btn-step-n").addEventListener("click", () => this.stepN());
    $("btn-step-kind").addEventListener("click", () => this.step({ kind: kinds.value }));
    $("speed").addEventListener("input", () => this.setSpeed(sliderToSpeed(Number($("speed").value))));
    $("btn-reset").addEventListener("click", () => this.call("sim:reset", {}));
    $("scenario").addEventListener("change", () => this.call("sim:load", { scenario: $("scenario").value }));
    $("scenario-file").addEventListener("change", (ev) => this.upload(ev.target));
    $("btn-help").addEventListener("click", () => this.help());
    $("help-close").addEventListener("click", () => this.help(false));
    document.addEventListener("keydown", (ev) => this.key(ev));
    // A focused button would also "click" on space's keyup and undo the toggle.
    document.addEventListener("keyup", (ev) => {
      if (ev.key === " " && !ev.target.closest("input, select, textarea")) ev.preventDefault();
    });
  }

  /** Step the count typed; a count that is not a whole number in range is refused, not read as 1. */
  stepN() {
    const input = $("step-n");
    const text = input.value.trim();
    const n = /^[0-9]+$/.test(text) ? Number(text) : NaN;
    const ok = n >= Number(input.min) && n <= Number(input.max);
    input.setAttribute("aria-invalid", String(!ok));
    if (!ok) {
      this.hooks.toast(`events per step must be a whole number ${input.min}..${input.max}: not stepped`);
      return;
    }
    this.step({ count: n });
  }

  async call(type, payload) {
    const ack = await this.send(type, payload);
    if (!ack.ok) this.hooks.toast(`${ack.error.code}: ${ack.error.message}`);
    else if (ack.snapshot) {
      this.setPlaying(false);
      this.hooks.onSnapshot(ack.snapshot);
    }
    return ack;
  }

  setPresets(presets) {
    const sel = $("scenario");
    sel.replaceChildren();
    for (const p of presets) sel.add(new Option(p.title ? `${p.title}` : p.name, p.name));
  }

  setScenario(name) {
    const sel = $("scenario");
    if (![...sel.options].some((o) => o.value === name)) sel.add(new Option(`${name} (file)`, name));
    sel.value = name;
  }

  setSession(session) {
    for (const a of document.querySelectorAll("#exports a[data-fmt]")) {
      const url = `/export/${encodeURIComponent(session)}.${a.dataset.fmt}`;
      a.href = url;
      // The export is the current branch as revealed now: never a cached earlier copy.
      if (!a.__fresh) a.addEventListener("click", () => { a.href = `${a.__url}?at=${Date.now()}`; });
      a.__fresh = true;
      a.__url = url;
    }
  }

  setPlaying(playing) {
    this.playing = playing;
    const b = $("btn-play");
    b.textContent = playing ? "▮▮ Pause" : "▶ Play";
    b.setAttribute("aria-pressed", String(playing));
    document.body.classList.toggle("is-playing", playing);
    this.hooks.onPlaying(playing);
  }

  /** Reflect the server's speed on the slider without sending it back. */
  showSpeed(speed) {
    this.speed = speed;
    $("speed").value = String(speedToSlider(speed));
    $("speed-out").textContent = fmtSpeed(speed);
    this.hooks.onSpeed(speed);
  }

  async setSpeed(speed) {
    this.showSpeed(speed);
    const ack = await this.send("sim:speed", { speed });
    if (!ack.ok) this.hooks.toast(`${ack.error.code}: ${ack.error.message}`);
  }

  async toggle() {
    const want = !this.playing;
    if (want) this.hooks.beforePlay?.(); // a view in the past returns to live first
    this.setPlaying(want);
    const ack = await this.send(want ? "sim:play" : "sim:pause", {});
    if (!ack.ok) { this.setPlaying(!want); this.hooks.toast(`${ack.error.code}: ${ack.error.message}`); }
  }

  async step(payload) {
    if (this.hooks.stepInHistory?.(payload)) return { ok: true };
    if (this.playing) await this.toggle();
    return this.call("sim:step", payload);
  }

  async upload(input) {
    const file = input.files?.[0];
    if (!file) return;
    const text = await file.text();
    input.value = "";
    const ack = await this.send("sim:load", { text, filename: file.name });
    const problems = ack.ok ? [] : ack.error.problems ?? [];
    if (problems.length > 1) { // every mistake, each with its line, not only the first
      this.hooks.toast(`${ack.error.code}: ${file.name} has ${problems.length} mistakes`,
        problems.map((p) => [p.line ? `line ${p.line}` : "", p.path, p.message].filter(Boolean).join(": ")));
    } else if (!ack.ok) this.hooks.toast(`${ack.error.code}: ${ack.error.message}`);
    else if (ack.snapshot) { this.setPlaying(false); this.hooks.onSnapshot(ack.snapshot); }
  }

  help(show = $("help").hidden) {
    $("help").hidden = !show;
    if (show) $("help-close").focus();
  }

  key(ev) {
    if (ev.key === "Escape") { this.help(false); this.hooks.onEscape?.(); return; }
    if (ev.target.closest("input, select, textarea") || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.shiftKey && ev.key.startsWith("Arrow")) return; // shift + arrows pan the diagram
    const slider = $("speed");
    switch (ev.key) {
      case " ": ev.preventDefault(); this.toggle(); break;
      case "ArrowRight": ev.preventDefault(); this.step({ count: 1 }); break;
      case "ArrowLeft": ev.preventDefault(); this.hooks.onStepBack?.(); break;
      case "+": case "=":
        this.setSpeed(sliderToSpeed(Math.min(Number(slider.max), Number(slider.value) + KEY_SPEED_STEP)));
        break;
      case "-": case "_":
        this.setSpeed(sliderToSpeed(Math.max(0, Math.min(SLIDER_MAX_FINITE, Number(slider.value)) - KEY_SPEED_STEP)));
        break;
      case "?": this.help(); break;
      default: break;
    }
  }
}
