#!/usr/bin/env python3
"""Markdown table of run_cpu_decode.sh output: cpu_table.py FILE.json"""
import json, sys
d = json.load(open(sys.argv[1]))
rows = {(r["model"].replace(".quarot.safetensors", ""), r["binary"]): r for r in d["rows"]}
models = sorted({m for m, _ in rows}, key=lambda m: (not m.startswith("w4"), m))
w4 = {b: rows[("w4a4kv4_rtn_had", b)]["cpu_ms_per_token"]["median"] for b in ("old", "new")}
print(f"{d['threads']} thread(s), {d['decode_tokens']} tokens, ms CPU per decoded token, median (all rounds):\n")
print("| file | old | new | new / old | old: / W4 (same binary) | new: / W4 (same binary) | same text |")
print("|---|---|---|---|---|---|---|")
for m in models:
    o, n = rows[(m, "old")], rows[(m, "new")]
    om, nm = o["cpu_ms_per_token"]["median"], n["cpu_ms_per_token"]["median"]
    f = lambda r: ", ".join(f"{x:.2f}" for x in r["cpu_ms_per_token"]["all"])
    print(f"| {m} | {om:.2f} ({f(o)}) | {nm:.2f} ({f(n)}) | {nm / om:.2f} | {om / w4['old']:.2f} | {nm / w4['new']:.2f} | {o['text'] == n['text']} |")
