"""No lost work, no silent failure: what the page says when an action fails, a field is
malformed, the server goes away or the tab reloads (msgq-pingpong preset)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

SENDS_TO_OVERFILL = 9  # A_to_B is 8 deep


def test_a_queued_send_that_fails_says_it_failed(page: Page) -> None:
    page.locator("[data-vm='VM_B']").click()
    page.get_by_test_id("act-stop").click()
    expect(page.get_by_test_id("act-result")).to_contain_text("queued as action")
    page.locator("[data-vm='VM_A']").click()
    page.get_by_test_id("act-msgq").select_option("A_to_B")
    for i in range(SENDS_TO_OVERFILL):
        page.get_by_test_id("act-payload").fill(f"m{i}")
        page.get_by_test_id("act-send").click()
        expect(page.get_by_test_id("act-result")).to_contain_text(f"#{i + 2} ")
    page.get_by_test_id("step-n").fill("120")
    page.get_by_test_id("btn-step-n").click()
    result = page.get_by_test_id("act-result")
    expect(result).to_have_attribute("data-outcome", "failed")
    expect(result).to_contain_text(f"action #{SENDS_TO_OVERFILL + 1} failed")
    expect(result).to_contain_text("MSGQUEUE_FULL")


def test_a_malformed_field_is_refused_with_a_message_not_sent(page: Page) -> None:
    sent: list[str] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda f: sent.append(str(f))))
    page.locator("[data-vm='VM_A']").click()
    expect(page.get_by_test_id("insp-title")).to_have_text("VM_A")
    result = page.get_by_test_id("act-result")
    page.get_by_test_id("act-size").fill("")
    page.get_by_test_id("act-send").click()
    expect(result).to_have_attribute("data-outcome", "refused")
    expect(result).to_contain_text('size "" is not an integer 0..1024: not sent')
    page.get_by_test_id("act-prio").fill("99")
    page.get_by_test_id("act-priority").click()
    expect(result).to_contain_text('priority "99" is not an integer 0..63')
    expect(page.get_by_test_id("act-prio")).to_have_attribute("aria-invalid", "true")
    page.get_by_test_id("step-n").fill("")
    page.get_by_test_id("btn-step-n").click()
    expect(page.get_by_test_id("toast")).to_contain_text("not stepped")
    page.get_by_test_id("scenario").select_option("doorbell")
    page.wait_for_selector("[data-vm='VM_D']")
    page.locator("[data-vm='VM_A']").click()
    page.get_by_test_id("act-flags").fill("abc")
    page.get_by_test_id("act-ring").click()
    expect(page.get_by_test_id("act-result")).to_contain_text('flags "abc" is not an integer')
    expect(page.get_by_test_id("act-flags")).to_have_attribute("aria-invalid", "true")
    assert not any("sim:action" in f or "sim:step" in f for f in sent), sent
    page.wait_for_function("() => window.__gunyah.bootSeq > 0"
                           " && window.__gunyah.headSeq === window.__gunyah.bootSeq")
    assert page.evaluate("window.__gunyah.seq") == page.evaluate("window.__gunyah.bootSeq")


def test_an_upload_lists_every_mistake(page: Page, tmp_path) -> None:
    bad = tmp_path / "three.yaml"
    bad.write_text("name: three\npcpus: 2\nvms:\n  - name: VM_A\n    affinity: [5]\n"
                   "  - name: VM_A\nmsgqs:\n  - {name: q, sender: VM_A, receiver: VM_Z}\n")
    page.get_by_test_id("scenario-file").set_input_files(str(bad))
    toast = page.get_by_test_id("toast")
    expect(toast).to_contain_text("three.yaml has 3 mistakes")
    items = page.get_by_test_id("toast-item")
    expect(items).to_have_count(3)
    expect(items.nth(0)).to_contain_text("line 5: vms[0].affinity[0]: pCPU 5 does not exist")
    expect(items.nth(2)).to_contain_text("msgqs[0].receiver: no VM named 'VM_Z'")


def test_server_gone_shows_a_banner_disables_controls_and_reconnects(browser) -> None:
    from urllib.parse import urlparse

    from tests.conftest import start_server

    first = start_server()
    url = next(first)
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    page.set_default_timeout(15_000)
    second = None
    try:
        page.goto(url + "/")
        page.wait_for_selector("[data-vm='VM_A']")
        banner = page.get_by_test_id("offline-banner")
        expect(banner).to_be_hidden()
        first.close()  # the server process is terminated
        expect(banner).to_be_visible()
        expect(banner).to_contain_text("The server is not answering. Reconnecting")
        for testid in ("btn-play", "btn-step", "btn-reset"):
            expect(page.get_by_test_id(testid)).to_be_disabled()
            expect(page.get_by_test_id(testid)).to_have_attribute(
                "title", "Unavailable: the server is not answering: reconnecting")
        page.locator("[data-vm='VM_A']").click()
        page.get_by_test_id("act-send").click()  # an action says why it was not sent, at once
        expect(page.get_by_test_id("act-result")).to_contain_text("OFFLINE: not sent")
        second = start_server(extra_args=("--port", str(urlparse(url).port)))
        next(second)
        expect(banner).to_be_hidden()
        expect(page.get_by_test_id("btn-play")).to_be_enabled()
        expect(page.get_by_test_id("btn-play")).to_have_attribute("title", "Play / pause (space)")
        expect(page.get_by_test_id("st-conn")).to_have_text("connected")
    finally:
        context.close()
        if second is not None:
            second.close()
