#include <immintrin.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cstdint>
using clk=std::chrono::steady_clock;
// data: n loads of 64 bytes (16 rows x 16 two-bit columns); tables: per load 4 (cur) or 2 (pair) x 64 B
__attribute__((noinline)) __m512i cur(const uint8_t* d, const uint8_t* t, const int8_t* x, int64_t n){
  const __m512i m0=_mm512_set1_epi8(0x03), m1=_mm512_set1_epi8(0x0C), m2=_mm512_set1_epi8(0x30), o4=_mm512_set1_epi32(0x30201000), o0=_mm512_set1_epi32(0x03020100);
  __m512i a0=_mm512_setzero_si512(), a1=a0;
  for(int64_t i=0;i<n;++i){
    __m512i raw=_mm512_load_si512(d+64*i), sh=_mm512_srli_epi16(raw,4);
    const uint8_t* tt=t+256*i; const int8_t* xx=x+16*i; int32_t xv[4]; memcpy(xv,xx,16);
    a0=_mm512_dpbusd_epi32(a0,_mm512_permutexvar_epi8(_mm512_ternarylogic_epi32(raw,m0,o4,0xEA),_mm512_load_si512(tt)),_mm512_set1_epi32(xv[0]));
    a1=_mm512_dpbusd_epi32(a1,_mm512_permutexvar_epi8(_mm512_ternarylogic_epi32(raw,m1,o4,0xEA),_mm512_load_si512(tt+64)),_mm512_set1_epi32(xv[1]));
    a0=_mm512_dpbusd_epi32(a0,_mm512_permutexvar_epi8(_mm512_ternarylogic_epi32(raw,m2,o0,0xEA),_mm512_load_si512(tt+128)),_mm512_set1_epi32(xv[2]));
    a1=_mm512_dpbusd_epi32(a1,_mm512_permutexvar_epi8(_mm512_ternarylogic_epi32(sh,m1,o4,0xEA),_mm512_load_si512(tt+192)),_mm512_set1_epi32(xv[3]));
  }
  return _mm512_add_epi32(a0,a1);
}
__attribute__((noinline)) __m512i pair(const uint8_t* d, const uint8_t* t, int64_t n){
  const __m512i m=_mm512_set1_epi8(0x0F), o4=_mm512_set1_epi32(0x30201000), ones=_mm512_set1_epi8(1);
  __m512i a0=_mm512_setzero_si512(), a1=a0;
  for(int64_t i=0;i<n;++i){
    __m512i raw=_mm512_load_si512(d+64*i), sh=_mm512_srli_epi16(raw,4);
    const uint8_t* tt=t+128*i;
    a0=_mm512_dpbusd_epi32(a0,ones,_mm512_permutexvar_epi8(_mm512_ternarylogic_epi32(raw,m,o4,0xEA),_mm512_load_si512(tt)));
    a1=_mm512_dpbusd_epi32(a1,ones,_mm512_permutexvar_epi8(_mm512_ternarylogic_epi32(sh,m,o4,0xEA),_mm512_load_si512(tt+64)));
  }
  return _mm512_add_epi32(a0,a1);
}
int main(){
  int64_t n=1536*576/256/1; // loads per 1536x576 product... 16 rows x 16 cols per load
  uint8_t* d=(uint8_t*)aligned_alloc(64,64*n); uint8_t* t=(uint8_t*)aligned_alloc(64,256*n); int8_t* x=(int8_t*)aligned_alloc(64,16*n);
  for(int64_t i=0;i<64*n;++i)d[i]=i*7; for(int64_t i=0;i<256*n;++i)t[i]=i*3; for(int64_t i=0;i<16*n;++i)x[i]=i;
  for(int r=0;r<5;++r){
    volatile int s=0; auto t0=clk::now(); for(int k=0;k<200;++k){ __m512i v=cur(d,t,x,n); s+=_mm512_reduce_add_epi32(v);} double a=std::chrono::duration<double>(clk::now()-t0).count()/200;
    t0=clk::now(); for(int k=0;k<200;++k){ __m512i v=pair(d,t,n); s+=_mm512_reduce_add_epi32(v);} double b=std::chrono::duration<double>(clk::now()-t0).count()/200;
    printf("per 1536x576 (2-bit, weights+tables hot): current %.2f us, pair-LUT %.2f us, %.2fx\n",a*1e6,b*1e6,a/b);
  }
}
