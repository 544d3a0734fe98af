#!/usr/bin/env python3
"""Markdown table of run_ppl.sh output: ppl_table.py DIR"""
import glob, json, os, sys
rows = {}
for p in sorted(glob.glob(os.path.join(sys.argv[1], "*.json"))):
    name, tag, _ = os.path.basename(p).rsplit(".", 2)
    try:
        rows.setdefault(name, {})[tag] = json.load(open(p))
    except json.JSONDecodeError:
        pass
print("| file | old ppl (nll) | new ppl (nll) | identical |")
print("|---|---|---|---|")
for name, r in rows.items():
    o, n = r.get("old"), r.get("new")
    f = lambda d: f"{d['ppl']:.6f} ({d['nll']:.9f})" if d else "not run"
    print(f"| {name} | {f(o)} | {f(n)} | {bool(o and n and o['nll'] == n['nll'])} |")
