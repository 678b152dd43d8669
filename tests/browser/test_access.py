"""The page for everyone: the Tab key reaches every visible control, each shows a focus
ring and has a name a screen reader can say; under prefers-reduced-motion nothing moves
(no travelling dots, no CSS transition or animation, no scripted flash)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_rm import open_scenario, step_to

MAX_TABS = 400

# The focused element: what it is, whether a focus ring shows (its own outline or box
# shadow, or its label's for a visually hidden file input) and its accessible name.
FOCUSED_JS = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return null;
  const ring = (el) => { const cs = getComputedStyle(el);
    return (cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) > 0)
      || cs.boxShadow !== "none"; };
  const hiddenFile = e.type === "file" && e.closest("label");
  const text = (el) => (el.textContent || "").replace(/\\s+/g, " ").trim();
  const name = e.getAttribute("aria-label")
    || (e.getAttribute("aria-labelledby") || "").split(" ").map((id) =>
         text(document.getElementById(id) || document.createElement("i"))).join(" ").trim()
    || [...(e.labels || [])].map(text).join(" ").trim()
    || (["BUTTON", "A", "SUMMARY"].includes(e.tagName) ? text(e) : "")
    || e.getAttribute("title") || "";
  const what = e.id || e.dataset.testid || e.getAttribute("aria-label")
    || e.outerHTML.slice(0, 80);
  if (!e.dataset.tabWalk) {
    window.__tabWalkNext = (window.__tabWalkNext || 0) + 1;  // unique even when rows go
    e.dataset.tabWalk = String(window.__tabWalkNext);
  }
  return {id: e.dataset.tabWalk, what, ring: ring(hiddenFile ? hiddenFile : e), name};
}"""

# Every control a person can see and use (not disabled, not inside an inert or hidden part).
CONTROLS_JS = """() => [...document.querySelectorAll(
    "button, select, input, a[href], summary, [tabindex='0']")].filter((e) => {
  if (e.disabled || e.closest("[inert]")) return false;
  if (e.closest("details:not([open]) > :not(summary)")) return false;
  const target = e.type === "file" && e.closest("label") ? e.closest("label") : e;
  const b = target.getBoundingClientRect(), cs = getComputedStyle(target);
  return b.width > 0 && b.height > 0 && cs.visibility !== "hidden"
    && b.bottom > 0 && b.right > 0 && target.getClientRects().length > 0;
}).map((e) => e.id || e.dataset.testid || e.getAttribute("aria-label")
  || e.outerHTML.slice(0, 80))"""


def walk(page: Page) -> list[dict]:
    """Press Tab from the top of the page until focus comes round again; every stop."""
    page.evaluate("() => { document.activeElement?.blur(); window.scrollTo(0, 0); }")
    stops: list[dict] = []
    seen: set[str] = set()
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        f = page.evaluate(FOCUSED_JS)
        if f is None:
            continue
        if f["id"] in seen:
            break
        seen.add(f["id"])
        stops.append(f)
    return stops


def check_walk(page: Page) -> list[dict]:
    """Every control reached by Tab, with a focus ring and a name; the stops."""
    controls = page.evaluate(CONTROLS_JS)
    stops = walk(page)
    reached = {s["what"] for s in stops}
    missed = [c for c in controls if c not in reached]
    assert not missed, f"not reachable by Tab: {missed}"
    no_ring = [s["what"] for s in stops if not s["ring"]]
    assert not no_ring, f"no visible focus ring: {no_ring}"
    unnamed = [s["what"] for s in stops if not s["name"].strip()]
    assert not unnamed, f"no accessible name: {unnamed}"
    return stops


@pytest.mark.parametrize(("preset", "pick"), [("msgq-pingpong", "[data-vm='VM_A']"),
                                              ("msgq-pingpong", "[data-msgq='A_to_B']"),
                                              ("rm-boot", "[data-vm='HLOS']"),
                                              ("mem-share-doorbell", "[data-bell='ping']")])
def test_tab_reaches_every_control_with_a_focus_ring_and_a_name(page: Page, preset: str,
                                                                 pick: str) -> None:
    if page.get_by_test_id("btn-panels").get_attribute("aria-pressed") == "false":
        page.get_by_test_id("btn-panels").click()
    if preset != "msgq-pingpong":
        open_scenario(page, preset, pick.split("'")[1] if "data-vm" in pick else "HLOS")
    page.get_by_test_id("step-n").fill("30")
    page.get_by_test_id("btn-step-n").click()
    page.wait_for_function("() => window.__gunyah.seq >= 20")
    page.locator(pick).click()  # the inspector's forms, to act as that VM or on that object
    page.wait_for_selector("[data-testid=insp-title]")
    names = {s["name"] for s in check_walk(page)}
    # The diagram's clickable parts are among the stops, named for what they are.
    assert "VM HLOS" in names
    if preset == "msgq-pingpong":
        assert "VM VM_A" in names and "message queue A_to_B" in names


def test_reduced_motion_runs_no_animation_or_transition(page: Page) -> None:
    page.emulate_media(reduced_motion="reduce")
    page.reload()
    page.wait_for_selector("[data-vm='VM_A']")
    # The RM's boot: RPC captions and memory lends, which flash when motion is allowed.
    open_scenario(page, "rm-boot", "HLOS")  # loaded: the view is at the boot's end
    page.get_by_test_id("btn-play").click()
    page.wait_for_function("() => window.__gunyah.seq > 40")
    page.locator("#diagram [data-vm]").first.hover()
    page.get_by_test_id("btn-step").hover()
    running = page.evaluate("""() => document.getAnimations().map((a) =>
      `${a.constructor.name} ${a.animationName || a.transitionProperty || ''} on `
      + `${a.effect?.target?.id || a.effect?.target?.getAttribute?.('class') || ''}`)""")
    assert running == []
    dots = "() => document.querySelectorAll('.msg-dot[visibility=visible]').length"
    assert page.evaluate(dots) == 0


def test_the_event_log_is_read_with_the_arrow_keys(page: Page) -> None:
    if page.get_by_test_id("btn-panels").get_attribute("aria-pressed") == "false":
        page.get_by_test_id("btn-panels").click()
    seq = page.evaluate("() => window.__gunyah.seq") + 6
    page.get_by_test_id("step-n").fill("6")
    page.get_by_test_id("btn-step-n").click()
    # the log lists the sixth event (the boot's rows are folded: hidden until opened)
    page.wait_for_function(
        "s => document.querySelector(`[data-testid=log-entry][data-seq='${s}']:not([hidden])`)",
        arg=seq)
    page.get_by_test_id("log").focus()
    page.keyboard.press("ArrowUp")  # nothing chosen yet: the newest event
    chosen = "() => document.querySelector('[data-testid=log-entry].sel')?.dataset.seq"
    assert page.evaluate(chosen) == str(seq)
    page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowUp")
    assert page.evaluate(chosen) == str(seq - 2)
    assert page.get_by_test_id("log-detail").inner_text().find(f"#{seq - 2}") >= 0
    page.keyboard.press("Home")  # the first row listed (the boot's rows are folded away)
    first = page.evaluate(
        "() => document.querySelector('[data-testid=log-entry]:not([hidden])').dataset.seq")
    assert int(first) == page.evaluate("() => window.__gunyah.bootSeq") + 1
    assert page.evaluate(chosen) == first
    assert page.evaluate("() => window.__gunyah.seq") == seq  # the arrows did not step


def test_an_rm_packet_is_opened_from_the_keyboard(page: Page) -> None:
    if page.get_by_test_id("btn-panels").get_attribute("aria-pressed") == "false":
        page.get_by_test_id("btn-panels").click()
    open_scenario(page, "rm-boot", "HLOS")
    step_to(page, "vm.state")
    step_to(page, "msgq.send")  # the RM's reply waits in RM_to_HLOS
    page.locator("[data-msgq='RM_to_HLOS']").focus()
    page.keyboard.press("Enter")
    row = page.locator("[data-testid=insp-items] tbody tr").nth(0)
    expect(row).to_have_attribute("tabindex", "0")
    row.focus()
    at = page.evaluate("() => window.__gunyah.seq")
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("pkt-type")).to_have_text("2 REPLY")
    assert page.evaluate("() => window.__gunyah.seq") == at
