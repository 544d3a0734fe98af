import json,glob,collections,statistics as st,os,sys
rows=collections.defaultdict(list)
for f in sorted(glob.glob(sys.argv[1]+'/*.json')):
    v=os.path.basename(f).rsplit('_',1)[0]
    for m in json.load(open(f))['models']:
        rt=m['thread_round_trip_ns_all']; state='two' if min(rt)>200 else 'one' if max(rt)<120 else 'mixed'
        ops={o['op'].split(' ')[-1].split('+')[0]:o['us_per_token'] for o in m['profile']['decode_after_prompt']['ops']}
        rows[(os.path.basename(m['model'])[:12],state,v)].append((m['decode_after_prompt']['tokens_per_s'],m['decode_empty']['tokens_per_s'],ops))
for k in sorted(rows):
    v=rows[k]; keep=['lm_head','attention','gate_proj','down_proj','q_proj','o_proj']
    print(k,len(v),'%.1f %.1f'%(st.median(x[0] for x in v),st.median(x[1] for x in v)),' '.join('%s=%.0f'%(o,st.median(x[2].get(o,0) for x in v)) for o in keep))
