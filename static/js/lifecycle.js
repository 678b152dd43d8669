// VM lifecycle controls in the inspector. HLOS asks the RM with real RPCs (VM_ALLOCATE...
// VM_START, VM_STOP, VM_RESET, then teardown); the simulator's own "power the vCPUs"
// switch is shown apart, smaller, because the RM knows nothing of it.
import { html } from "./format.js";

const GUEST_CALLS = [
  // [label, RM message(s) it sends, action, extra args, testid, class]
  ["Start", "VM_START", "rm_vm_start", {}, "rm-start", "primary"],
  ["Stop (graceful)", "VM_STOP", "rm_vm_stop", { force: false }, "rm-stop", ""],
  ["Stop (forced)", "VM_STOP FORCE", "rm_vm_stop", { force: true }, "rm-stop-force", "danger"],
  ["Reset", "VM_RESET", "rm_vm_reset", {}, "rm-reset", ""],
  ["Destroy", "VM_STOP, VM_RESET, VM_DEALLOCATE", "rm_vm_destroy", {}, "rm-destroy", "danger"],
];

function button(parent, label, testid, onClick, cls = "", title = "") {
  const b = html("button", { type: "button", "data-testid": testid, class: cls, title }, label, parent);
  b.addEventListener("click", onClick);
  return b;
}

/** The "HLOS asks the RM" box for `vm`: create (on the primary VM) or lifecycle (on a guest). */
export function rmLifecycle(parent, vm, images, run) {
  if (vm.kind === "primary") {
    if (!images.length) return;
    const box = html("div", { class: "actions rm-actions" }, null, parent);
    html("h3", {}, "HLOS asks the RM: VM_ALLOCATE, MEM_LEND, VM_CONFIG_IMAGE, VM_INIT, VM_START", box);
    const f = html("div", { class: "form" }, null, box);
    const l = html("label", { class: "field" }, null, f);
    html("span", {}, "image", l);
    const image = html("select", { "data-testid": "rm-image" }, null, l);
    for (const name of images) html("option", { value: name }, name, image);
    const sl = html("label", { class: "field" }, null, f);
    html("span", {}, "then VM_START", sl);
    const start = html("input", { type: "checkbox", "data-testid": "rm-create-start" }, null, sl);
    start.checked = true;
    button(f, "Create VM from image", "rm-create", (ev) => run("rm_vm_create",
      { image: image.value, start: start.checked }, ev), "primary");
    return;
  }
  if (vm.kind !== "guest") return;
  const box = html("div", { class: "actions rm-actions" }, null, parent);
  html("h3", {}, `HLOS asks the RM about ${vm.name} (vmid ${vm.vmid})`, box);
  const f = html("div", { class: "form rm-form" }, null, box);
  for (const [label, msg, action, extra, testid, cls] of GUEST_CALLS) {
    const b = button(f, null, testid, (ev) => run(action, { vm: vm.name, ...extra }, ev), cls,
      `HLOS asks the RM: ${msg}`);
    html("span", { class: "b-main" }, label, b);
    html("span", { class: "b-sub" }, `HLOS asks the RM: ${msg}`, b);
  }
}

/** Power switch of the simulator (not an RM call): vm_start / vm_stop power the vCPUs. */
export function powerControls(parent, vm, run) {
  const f = html("div", { class: "form power" }, null, parent);
  html("span", { class: "power-label" }, "simulator: power vCPUs", f);
  button(f, "on", "act-start", (ev) => run("vm_start", { vm: vm.name }, ev), "small");
  button(f, "off", "act-stop", (ev) => run("vm_stop", { vm: vm.name }, ev), "small");
}

/** The device-tree overlay the RM writes for this VM, collapsed by default. */
export function dtsDetails(parent, vm, fetchDts) {
  const d = html("details", { class: "dts", "data-testid": "insp-dts" }, null, parent);
  html("summary", {}, "Device tree: the hypervisor node the RM adds", d);
  const pre = html("pre", {}, vm.dts ?? "", d);
  if (!vm.dts && fetchDts) {
    pre.textContent = "asking the server…";
    fetchDts(vm.name).then((text) => { pre.textContent = text ?? "(none yet: the RM writes it at VM_INIT)"; });
  }
}
