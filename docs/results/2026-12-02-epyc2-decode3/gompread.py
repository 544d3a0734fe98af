import struct,sys,subprocess,glob
# usage: gompread.py FILE BINARY  -> per call site counts (addresses are absolute; binary is non-PIE? resolve via /proc maps not kept)
f=open(sys.argv[1],'rb').read()
rows=[]
for i in range(0,len(f),24):
    off,t,m=struct.unpack('Qqq',f[i:i+24])
    if off==0: break
    rows.append((off,t,m))
for off,t,m in sorted(rows,key=lambda r:-r[1]): print(hex(off),t,m)
print('total',sum(r[1] for r in rows),'multi',sum(r[2] for r in rows))
