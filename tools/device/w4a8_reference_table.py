#!/usr/bin/env python3
"""Joins run_cutlass_w4a8.sh's outputs: CUTLASS INT4 x FP8 (the external W4A8 reference)
against our W4A4 / W4A8 and cuBLAS FP16 per shape and M. Writes OUT_DIR/w4a8_reference.json
and .md; prints the markdown.   tools/device/w4a8_reference_table.py OUT_DIR"""
import json
import re
import sys
from pathlib import Path

out = Path(sys.argv[1])
ours = json.loads((out / "ours.json").read_text())
cut = {}
key = None
for line in (out / "cutlass.log").read_text().splitlines():
    m = re.match(r"=== k=(\d+) n=(\d+) m=(\d+)", line)
    if m:
        key = tuple(int(v) for v in m.groups())
        cut[key] = {"us": None, "passed": None}
        continue
    if key is None:
        continue
    m = re.search(r"Avg runtime:\s*([0-9.eE+-]+)\s*ms", line)
    if m:
        cut[key]["us"] = float(m.group(1)) * 1000.0
    if "Disposition" in line:
        cut[key]["passed"] = "Passed" in line

rows = []
for g in ours["gemm"]:
    k, n, m = g["k"], g["n"], g["m"]
    c = cut.get((k, n, m), {})
    us = g["us"]
    r = {"k": k, "n": n, "m": m, "cublas_fp16_us": us.get("cublas_fp16"), "w4a4_us": us.get("w4a4"),
         "w4a8_us": us.get("w4a8"), "cutlass_int4_fp8_us": c.get("us"), "cutlass_check_passed": c.get("passed")}
    if c.get("us"):
        r["w4a4_speedup_vs_cutlass"] = round(c["us"] / us["w4a4"], 3) if us.get("w4a4") else None
        r["w4a8_speedup_vs_cutlass"] = round(c["us"] / us["w4a8"], 3) if us.get("w4a8") else None
        r["cutlass_vs_fp16"] = round(us["cublas_fp16"] / c["us"], 3) if us.get("cublas_fp16") else None
    rows.append(r)

(out / "w4a8_reference.json").write_text(json.dumps({"gpu": ours.get("gpu"), "rows": rows}, indent=1) + "\n")
fmt = lambda v: "-" if v is None else (f"{v:.1f}" if isinstance(v, float) else str(v))
md = ["| K x N | M | cuBLAS FP16 us | CUTLASS INT4xFP8 us | ours W4A8 us | ours W4A4 us | W4A4 vs CUTLASS | W4A8 vs CUTLASS | CUTLASS check |",
      "|---|---|---|---|---|---|---|---|---|"]
for r in rows:
    md.append(f"| {r['k']} x {r['n']} | {r['m']} | {fmt(r['cublas_fp16_us'])} | {fmt(r['cutlass_int4_fp8_us'])} | "
              f"{fmt(r['w4a8_us'])} | {fmt(r['w4a4_us'])} | {fmt(r.get('w4a4_speedup_vs_cutlass'))} | "
              f"{fmt(r.get('w4a8_speedup_vs_cutlass'))} | {fmt(r['cutlass_check_passed'])} |")
(out / "w4a8_reference.md").write_text("\n".join(md) + "\n")
print("\n".join(md))
