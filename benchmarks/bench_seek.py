"""Browser benchmark: rewinding a long run. Headless Chromium plays msgq-pingpong at speed
"max" until the page holds at least --events trace events, pauses, then moves the scrubber
to --seeks random positions (fixed seed).

Each seek is timed inside the page with the Performance clock: from the scrubber's input
event (which restores the nearest keyframe, re-applies the events after it, redraws the
diagram and re-lists the log) to the end of that handler, and to the next animation frame.
Prints one JSON object: {events, seeks, p50_ms, p95_ms, max_ms, ...}. Target: p95 < 200 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics

from bench_browser import ROOT, open_page, percentile, set_max_speed, start_server, stop_server
from playwright.sync_api import sync_playwright

PLAY_TIMEOUT_MS = 300_000
TARGET_P95_MS = 200
RANDOM_SEED = 20240601

# One seek: the scrubber's input handler runs synchronously; then wait for the next frame.
SEEK_JS = """(seq) => new Promise((resolve) => {
  const el = document.querySelector('[data-testid=scrubber]');
  const t0 = performance.now();
  el.value = String(seq);
  el.dispatchEvent(new Event('input'));
  const t1 = performance.now();
  requestAnimationFrame(() => resolve({ sync: t1 - t0, frame: performance.now() - t0,
                                        seq: window.__gunyah.seq }));
})"""


def stats(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(values), 2),
            "p95_ms": round(percentile(values, 95), 2), "max_ms": round(max(values), 2)}


def run(events: int, seeks: int) -> dict:
    proc, url = start_server()
    try:
        with sync_playwright() as pw:
            browser, page = open_page(pw, url + "/?scenario=msgq-pingpong")
            set_max_speed(page)
            page.get_by_test_id("btn-play").click()
            page.wait_for_function("n => window.__gunyah.headSeq >= n", arg=events,
                                   timeout=PLAY_TIMEOUT_MS, polling=250)
            page.get_by_test_id("btn-play").click()
            page.wait_for_function("() => !window.__gunyah.playing")  # not eval: CSP
            page.wait_for_timeout(500)  # the last batches in flight arrive
            hooks = page.evaluate("({head: __gunyah.headSeq, kf: __gunyah.keyframes})")
            page.wait_for_function("() => Number(document.querySelector("
                                   "'[data-testid=scrubber]').max) === window.__gunyah.headSeq")
            rng = random.Random(RANDOM_SEED)
            targets = [rng.randrange(100, hooks["head"]) for _ in range(seeks)]
            results = [page.evaluate(SEEK_JS, seq) for seq in targets]
            assert [r["seq"] for r in results] == targets, "a seek landed elsewhere"
            (ROOT / "artifacts").mkdir(exist_ok=True)
            page.screenshot(path=str(ROOT / "artifacts" / "history-bench-seek.png"))
            browser.close()
    finally:
        stop_server(proc)
    sync = [r["sync"] for r in results]
    frame = [r["frame"] for r in results]
    out = {"events": hooks["head"] + 1, "seeks": len(results), **stats(sync),
           "to_next_frame": stats(frame), "keyframes": hooks["kf"],
           "target_p95_ms": TARGET_P95_MS}
    out["met"] = out["p95_ms"] < TARGET_P95_MS
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--seeks", type=int, default=50)
    args = parser.parse_args()
    print(json.dumps(run(args.events, args.seeks), indent=2))


if __name__ == "__main__":
    main()
