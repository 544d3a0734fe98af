import collections, statistics as st, sys
for f in sys.argv[1:]:
    rows=collections.defaultdict(list)
    for l in open(f):
        c=l.split()
        if len(c)<13: continue
        rows[(int(c[0]),int(c[1]),int(c[6])+int(c[7]))].append([float(x) for x in c[2:]])
    print(f)
    for k,v in sorted(rows.items()):
        if len(v)<100: continue
        v=v[len(v)//2:]
        med=[st.median(x[i] for x in v) for i in range(11)]
        print('  ',k, 'first %.2f %.2f | last %.2f %.2f | items %d/%d | end %.2f | in next %.2f %.2f | in run %.2f %.2f'%tuple(med))
