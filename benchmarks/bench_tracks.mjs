// How long the pCPU tracks take to derive from the kept events (tracks.js
// trackSegments + mergeNarrow), for each window, at the end of a long run.
// Usage: python -m gunyah_core run msgq-pingpong --format jsonl --until 200ms --out /tmp/pp.jsonl
//        node benchmarks/bench_tracks.mjs /tmp/pp.jsonl
import { readFileSync } from "node:fs";
import { trackSegments, mergeNarrow, WINDOWS_NS } from "../static/js/tracks.js";

const TRACK_PX = 600; // about a track's width at 1280×720
const REPEAT = 20;
const all = readFileSync(process.argv[2], "utf8").trim().split("\n").map((l) => JSON.parse(l));
const events = all.filter((e) => e.kind === "sched.switch" || e.kind === "virq.deliver"); // as Tracks.keep
const end = events.length - 1;
const t1 = events[end].t;
const npcpu = 1 + Math.max(...events.filter((e) => e.kind === "sched.switch").map((e) => e.pcpu));
console.log(`${all.length} events (${events.length} switches and vIRQs), ${npcpu} pCPUs, t1 = ${t1} ns`);
for (const span of WINDOWS_NS) {
  let segs = 0;
  let drawn = 0;
  const t = performance.now();
  for (let i = 0; i < REPEAT; i++) {
    const out = trackSegments(events, end, t1, span, npcpu);
    segs = out.reduce((a, p) => a + p.segs.length, 0);
    drawn = out.reduce((a, p) => a + mergeNarrow(p.segs, span / TRACK_PX).length, 0);
  }
  const ms = (performance.now() - t) / REPEAT;
  console.log(`window ${span / 1e6} ms: ${ms.toFixed(2)} ms per derivation, ${segs} slices, ${drawn} drawn`);
}
