import json,glob,collections,statistics as st,os,sys
rows=collections.defaultdict(list); tok=collections.defaultdict(list)
for f in sorted(glob.glob(sys.argv[1]+'/*.json')):
    v=os.path.basename(f).rsplit('_',1)[0]
    for m in json.load(open(f))['models']:
        rt=m['thread_round_trip_ns_all']; state='two' if min(rt)>200 else 'one' if max(rt)<120 else 'mixed'
        name=os.path.basename(m['model'])[:10]
        tok[(name,state,v)].append((m['decode_after_prompt']['tokens_per_s'],m['decode_empty']['tokens_per_s']))
        for o in m['profile']['decode_after_prompt']['ops']:
            for ph,val in o.get('phases',{}).items():
                rows[(name,state,o['op'].split(' ')[-1][:14],ph[:12],v)].append(val['seconds']/o['calls']*1e6)
for k in sorted(tok): print(k, len(tok[k]), '%.1f %.1f'%(st.median(x[0] for x in tok[k]), st.median(x[1] for x in tok[k])))
for k in sorted(rows): print(k, '%.2f'%st.median(rows[k]))
