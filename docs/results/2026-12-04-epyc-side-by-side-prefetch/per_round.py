# Per-round decode rates and fractions of that round's bandwidth bound (README's table).
import json
d = json.load(open('bench_side_by_side.json'))
q = d['quarot']
bw = q['measured_read_bandwidth_gbs_all']
print('round bandwidth GB/s: ' + ' / '.join('%.1f' % b for b in bw))
for m in q['models']:
    name = m['model'].split('/')[-1].replace('.quarot.safetensors', '')
    a, e = m['decode_after_prompt'], m['decode_empty']
    fa = [r * a['bytes_per_token'] / 1e9 / b for r, b in zip(a['tokens_per_s_all'], bw)]
    fe = [r * e['bytes_per_token'] / 1e9 / b for r, b in zip(e['tokens_per_s_all'], bw)]
    print('| %s | %s | %s |' % (name, ' / '.join('%.0f (%.0f%%)' % (r, 100 * f) for r, f in zip(a['tokens_per_s_all'], fa)),
                                ' / '.join('%.0f (%.0f%%)' % (r, 100 * f) for r, f in zip(e['tokens_per_s_all'], fe))))
