#include <immintrin.h>
#include <chrono>
#include <cstdio>
using clk=std::chrono::steady_clock;
#define N 100000000LL
template<class F> void run(const char* nm, F f){ auto t0=clk::now(); __m512i r=f(); double s=std::chrono::duration<double>(clk::now()-t0).count(); alignas(64) int x[16]; _mm512_store_si512(x,r); printf("%-28s %.3f ns/iter (%d)\n",nm,s/N*1e9,x[0]&1);}
int main(){
  __m512i a[8]; for(int i=0;i<8;++i) a[i]=_mm512_set1_epi32(i*0x01020304+7);
  __m512i t=_mm512_set1_epi32(0x11223344), c=_mm512_set1_epi64(0x0102030405060708LL), m=_mm512_set1_epi8(3), o=_mm512_set1_epi32(0x30201000);
  // 8 independent chains
  run("vpermb x8",[&]{ __m512i v[8]; for(int i=0;i<8;++i)v[i]=a[i]; for(long k=0;k<N;++k){ _Pragma("GCC unroll 8") for(int i=0;i<8;++i){ v[i]=_mm512_permutexvar_epi8(v[i],t);} asm volatile(""::"v"(v[0]));} __m512i r=v[0]; for(int i=1;i<8;++i) r=_mm512_xor_si512(r,v[i]); return r;});
  run("multishift x8",[&]{ __m512i v[8]; for(int i=0;i<8;++i)v[i]=a[i]; for(long k=0;k<N;++k){ _Pragma("GCC unroll 8") for(int i=0;i<8;++i){ v[i]=_mm512_multishift_epi64_epi8(c,v[i]);} } __m512i r=v[0]; for(int i=1;i<8;++i) r=_mm512_xor_si512(r,v[i]); return r;});
  run("dpbusd x8",[&]{ __m512i v[8]; for(int i=0;i<8;++i)v[i]=a[i]; for(long k=0;k<N;++k){ _Pragma("GCC unroll 8") for(int i=0;i<8;++i){ v[i]=_mm512_dpbusd_epi32(v[i],t,c);} } __m512i r=v[0]; for(int i=1;i<8;++i) r=_mm512_xor_si512(r,v[i]); return r;});
  run("ternlog x8",[&]{ __m512i v[8]; for(int i=0;i<8;++i)v[i]=a[i]; for(long k=0;k<N;++k){ _Pragma("GCC unroll 8") for(int i=0;i<8;++i){ v[i]=_mm512_ternarylogic_epi32(v[i],m,o,0xEA);} } __m512i r=v[0]; for(int i=1;i<8;++i) r=_mm512_xor_si512(r,v[i]); return r;});
  run("shufb x8",[&]{ __m512i v[8]; for(int i=0;i<8;++i)v[i]=a[i]; for(long k=0;k<N;++k){ _Pragma("GCC unroll 8") for(int i=0;i<8;++i){ v[i]=_mm512_shuffle_epi8(t,v[i]);} } __m512i r=v[0]; for(int i=1;i<8;++i) r=_mm512_xor_si512(r,v[i]); return r;});
  run("srli16 x8",[&]{ __m512i v[8]; for(int i=0;i<8;++i)v[i]=a[i]; for(long k=0;k<N;++k){ _Pragma("GCC unroll 8") for(int i=0;i<8;++i){ v[i]=_mm512_srli_epi16(v[i],2);} } __m512i r=v[0]; for(int i=1;i<8;++i) r=_mm512_xor_si512(r,v[i]); return r;});
  run("ms+tl+permb+dp x4",[&]{ __m512i v[4],acc[4]; for(int i=0;i<4;++i){v[i]=a[i];acc[i]=a[i+4];} for(long k=0;k<N;++k){ _Pragma("GCC unroll 4") for(int i=0;i<4;++i){ __m512i idx=_mm512_ternarylogic_epi32(_mm512_multishift_epi64_epi8(c,v[i]),m,o,0xEA); __m512i w=_mm512_permutexvar_epi8(idx,t); acc[i]=_mm512_dpbusd_epi32(acc[i],w,c); v[i]=_mm512_add_epi64(v[i],c);} } __m512i r=acc[0]; for(int i=1;i<4;++i) r=_mm512_xor_si512(r,acc[i]); return r;});
  run("sr+tl+permb+dp x4",[&]{ __m512i v[4],acc[4]; for(int i=0;i<4;++i){v[i]=a[i];acc[i]=a[i+4];} for(long k=0;k<N;++k){ _Pragma("GCC unroll 4") for(int i=0;i<4;++i){ __m512i idx=_mm512_ternarylogic_epi32(_mm512_srli_epi16(v[i],2),m,o,0xEA); __m512i w=_mm512_permutexvar_epi8(idx,t); acc[i]=_mm512_dpbusd_epi32(acc[i],w,c); v[i]=_mm512_add_epi64(v[i],c);} } __m512i r=acc[0]; for(int i=1;i<4;++i) r=_mm512_xor_si512(r,acc[i]); return r;});
  run("tl+shufb+dp x4",[&]{ __m512i v[4],acc[4]; for(int i=0;i<4;++i){v[i]=a[i];acc[i]=a[i+4];} for(long k=0;k<N;++k){ _Pragma("GCC unroll 4") for(int i=0;i<4;++i){ __m512i idx=_mm512_ternarylogic_epi32(v[i],m,o,0xEA); __m512i w=_mm512_shuffle_epi8(t,idx); acc[i]=_mm512_dpbusd_epi32(acc[i],w,c); v[i]=_mm512_add_epi64(v[i],c);} } __m512i r=acc[0]; for(int i=1;i<4;++i) r=_mm512_xor_si512(r,acc[i]); return r;});
  run("tl+permb+dp x4",[&]{ __m512i v[4],acc[4]; for(int i=0;i<4;++i){v[i]=a[i];acc[i]=a[i+4];} for(long k=0;k<N;++k){ _Pragma("GCC unroll 4") for(int i=0;i<4;++i){ __m512i idx=_mm512_ternarylogic_epi32(v[i],m,o,0xEA); __m512i w=_mm512_permutexvar_epi8(idx,t); acc[i]=_mm512_dpbusd_epi32(acc[i],w,c); v[i]=_mm512_add_epi64(v[i],c);} } __m512i r=acc[0]; for(int i=1;i<4;++i) r=_mm512_xor_si512(r,acc[i]); return r;});
  run("tl+permb+dp x4 +1sr",[&]{ __m512i v[4],acc[4]; for(int i=0;i<4;++i){v[i]=a[i];acc[i]=a[i+4];} for(long k=0;k<N;++k){ _Pragma("GCC unroll 4") for(int i=0;i<4;++i){ __m512i src = i==3? _mm512_srli_epi16(v[i],2): v[i]; __m512i idx=_mm512_ternarylogic_epi32(src,m,o,0xEA); __m512i w=_mm512_permutexvar_epi8(idx,t); acc[i]=_mm512_dpbusd_epi32(acc[i],w,c); v[i]=_mm512_add_epi64(v[i],c);} } __m512i r=acc[0]; for(int i=1;i<4;++i) r=_mm512_xor_si512(r,acc[i]); return r;});
}
