#!/usr/bin/env python3
"""Table of run_bench_ab.sh runs: summarize.py RAWDIR OUT.json (prints markdown).
Per run (one binary, one `quarot bench` process tree): each model's median decode rate
over its --repeats, its share of the bandwidth bound, and its ratio to the W4A4KV4 row
of the same run (the first model)."""
import glob, json, os, re, statistics, sys

raw, dst = sys.argv[1], sys.argv[2]
runs = []
for path in sorted(glob.glob(os.path.join(raw, "*.json"))):
    m = re.match(r"(old|new)\.(\d+)\.json$", os.path.basename(path))
    if not m:
        continue
    try:
        j = json.load(open(path))
    except json.JSONDecodeError:
        continue
    load = open(path[:-5] + ".load").read().strip() if os.path.exists(path[:-5] + ".load") else ""
    base = j["models"][0]
    run = {"binary": m.group(1), "round": int(m.group(2)), "load": load,
           "read_bandwidth_gbs": j.get("measured_read_bandwidth_gbs"), "models": []}
    for mod in j["models"]:
        row = {"model": os.path.basename(mod["model"]), "kv_bytes_per_position": mod["kv_bytes_per_position"]}
        for k in ("prefill", "decode_after_prompt", "decode_empty"):
            row[k] = {"tokens_per_s": mod[k]["tokens_per_s"], "all": mod[k]["tokens_per_s_all"]}
            if k != "prefill":
                row[k]["bytes_per_token"] = mod[k]["bytes_per_token"]
                row[k]["fraction_of_bandwidth_bound"] = mod[k]["fraction_of_bandwidth_bound"]
                row[k]["ratio_to_first_model"] = mod[k]["tokens_per_s"] / base[k]["tokens_per_s"]
        run["models"].append(row)
    runs.append(run)
json.dump({"runs": runs}, open(dst, "w"), indent=1)
print("| run | load | read GB/s | model | KV B/pos | MB/token @512 | decode @512 tok/s (repeats) | % bound @512 | / W4 @512 | decode @0 tok/s (repeats) | % bound @0 | / W4 @0 |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in sorted(runs, key=lambda r: (r["round"], r["binary"] != "old")):
    for m in r["models"]:
        a, e = m["decode_after_prompt"], m["decode_empty"]
        al = ", ".join(f"{x:.1f}" for x in a["all"])
        el = ", ".join(f"{x:.1f}" for x in e["all"])
        print(f"| {r['binary']} {r['round']} | {r['load'].split()[0] if r['load'] else ''} | {r['read_bandwidth_gbs']:.1f} | {m['model'].replace('.quarot.safetensors', '')} | "
              f"{m['kv_bytes_per_position']:.0f} | {a['bytes_per_token'] / 1e6:.0f} | {a['tokens_per_s']:.1f} ({al}) | "
              f"{100 * a['fraction_of_bandwidth_bound']:.0f}% | {a['ratio_to_first_model']:.2f} | {e['tokens_per_s']:.1f} ({el}) | "
              f"{100 * e['fraction_of_bandwidth_bound']:.0f}% | {e['ratio_to_first_model']:.2f} |")
