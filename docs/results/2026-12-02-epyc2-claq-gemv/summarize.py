#!/usr/bin/env python3
"""Medians and all values of an old/new run of run_ab.sh: summarize.py RAWDIR OUT.json (prints a table)."""
import glob, json, os, re, statistics, sys

raw, dst = sys.argv[1], sys.argv[2]
keys = ("prefill", "decode_after_prompt", "decode_empty")
rows, bw = {}, {"old": [], "new": []}
for path in sorted(glob.glob(os.path.join(raw, "*.json"))):
    m = re.match(r"(old|new)\.(\d+)\.json$", os.path.basename(path))
    if not m:
        continue
    tag = m.group(1)
    try:
        j = json.load(open(path))
    except json.JSONDecodeError:  # a round still running
        continue
    bw[tag].append(j.get("measured_read_bandwidth_gbs"))
    for mod in j["models"]:
        d = rows.setdefault((os.path.basename(mod["model"]), tag), {k: [] for k in keys + ("load_s", "peak_rss_mb", "bound")})
        for k in keys:
            d[k].append(mod[k]["tokens_per_s"])
        d["bound"].append(mod["decode_after_prompt"]["fraction_of_bandwidth_bound"])
        d["load_s"].append(mod["load_seconds"])
        d["peak_rss_mb"].append(mod["peak_rss_bytes"] / 1e6)
        d["bytes_per_token"] = mod["decode_after_prompt"]["bytes_per_token"]
out = {"read_bandwidth_gbs": bw, "rows": []}
for (model, tag), d in sorted(rows.items()):
    row = {"model": model, "binary": tag, "bytes_per_token_at_512": d["bytes_per_token"]}
    for k, v in d.items():
        if isinstance(v, list):
            row[k] = {"median": statistics.median(v), "all": v}
    out["rows"].append(row)
json.dump(out, open(dst, "w"), indent=1)
print("read bandwidth GB/s  old", [round(x, 1) for x in bw["old"]], " new", [round(x, 1) for x in bw["new"]])
print("| model | binary | prefill 512 tok/s | decode @512 tok/s (all) | decode @0 tok/s (all) | share of bound @512 | load s | peak RSS MB |")
print("|---|---|---|---|---|---|---|---|")
for r in out["rows"]:
    f = lambda k, p=1: f"{r[k]['median']:.{p}f} ({', '.join(f'{x:.{p}f}' for x in r[k]['all'])})"
    print(f"| {r['model']} | {r['binary']} | {r['prefill']['median']:.1f} | {f('decode_after_prompt')} | {f('decode_empty')} | "
          f"{100 * r['bound']['median']:.0f}% | {r['load_s']['median']:.2f} | {r['peak_rss_mb']['median']:.0f} |")
