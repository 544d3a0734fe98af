#!/usr/bin/env python3
"""Table of run_gemv.sh: gemv_table.py DIR (prints markdown: us/call, bw%, gemv_bw% per run)."""
import glob, json, os, re, sys
d = sys.argv[1]
runs = {}
for p in sorted(glob.glob(os.path.join(d, "*.json"))):
    m = re.match(r"(old|new)\.(\d+)\.json$", os.path.basename(p))
    if not m:
        continue
    try:
        bs = json.load(open(p))["benchmarks"]
    except json.JSONDecodeError:  # a run still going
        continue
    for b in bs:
        runs.setdefault(b["name"], {})[f"{m.group(1)}{m.group(2)}"] = b
cols = sorted({k for v in runs.values() for k in v}, key=lambda k: (k[3:], k[:3] != "old"))
print("| benchmark | " + " | ".join(f"{c} us/call (bw%, gemv_bw%)" for c in cols) + " |")
print("|---" * (len(cols) + 1) + "|")
for name, v in runs.items():
    cells = []
    for c in cols:
        b = v.get(c)
        if b is None:
            cells.append("")
            continue
        us = b.get("us/call", b.get("real_time"))
        extra = f"{b['bw%']:.0f}%" if "bw%" in b else ""
        if "gemv_bw%" in b:
            extra += f", {b['gemv_bw%']:.0f}%"
        if "ns_per_8" in b or "ns/8w" in b:
            extra = f"{b.get('ns_per_8', b.get('ns/8w')):.3f} ns/8w"
        cells.append(f"{us:.1f} ({extra})")
    print(f"| {name} | " + " | ".join(cells) + " |")
