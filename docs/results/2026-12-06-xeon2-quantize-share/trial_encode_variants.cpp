#include <immintrin.h>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <vector>
#include <random>
static inline __mmask16 tail_mask(int64_t left){return left>=16?__mmask16{0xFFFF}:(__mmask16)((1u<<left)-1);}
__attribute__((noinline)) int32_t encA(const float* x,int64_t n,float s,float add,float lo,float hi,int32_t offset,uint8_t* codes){
  const __m512 vs=_mm512_set1_ps(s),vadd=_mm512_set1_ps(add),vlo=_mm512_set1_ps(lo),vhi=_mm512_set1_ps(hi);const __m512i voff=_mm512_set1_epi32(offset);
  __m512i sum=_mm512_setzero_si512();
  for(int64_t i=0;i<n;i+=16){const __mmask16 m=tail_mask(n-i);
    __m512 q=_mm512_roundscale_ps(_mm512_div_ps(_mm512_maskz_loadu_ps(m,x+i),vs),_MM_FROUND_TO_NEAREST_INT|_MM_FROUND_NO_EXC);
    q=_mm512_min_ps(_mm512_max_ps(_mm512_add_ps(q,vadd),vlo),vhi);
    const __m512i c=_mm512_add_epi32(_mm512_cvtps_epi32(q),voff);
    sum=_mm512_mask_add_epi32(sum,m,sum,c);_mm_mask_storeu_epi8(codes+i,m,_mm512_cvtepi32_epi8(c));}
  return _mm512_reduce_add_epi32(sum);}
__attribute__((noinline)) int32_t encB(const float* x,int64_t n,float s,float add,float lo,float hi,int32_t offset,uint8_t* codes){
  const __m512 vs=_mm512_set1_ps(1.0f/s),vadd=_mm512_set1_ps(add),vlo=_mm512_set1_ps(lo),vhi=_mm512_set1_ps(hi);const __m512i voff=_mm512_set1_epi32(offset);
  __m512i sum=_mm512_setzero_si512();
  for(int64_t i=0;i<n;i+=16){const __mmask16 m=tail_mask(n-i);
    __m512 q=_mm512_roundscale_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m,x+i),vs),_MM_FROUND_TO_NEAREST_INT|_MM_FROUND_NO_EXC);
    q=_mm512_min_ps(_mm512_max_ps(_mm512_add_ps(q,vadd),vlo),vhi);
    const __m512i c=_mm512_add_epi32(_mm512_cvtps_epi32(q),voff);
    sum=_mm512_mask_add_epi32(sum,m,sum,c);_mm_mask_storeu_epi8(codes+i,m,_mm512_cvtepi32_epi8(c));}
  return _mm512_reduce_add_epi32(sum);}
// div, but integer clamp and magic rounding; whole vectors + one tail
__attribute__((noinline)) int32_t encC(const float* x,int64_t n,float s,float add,float lo,float hi,int32_t offset,uint8_t* codes){
  const float M=12582912.0f; int32_t mb; std::memcpy(&mb,&M,4);
  const __m512 vs=_mm512_set1_ps(s), vM=_mm512_set1_ps(M);
  const int32_t ai=(int32_t)add;
  const __m512i L=_mm512_set1_epi32((int32_t)lo-ai+mb), H=_mm512_set1_epi32((int32_t)hi-ai+mb), C=_mm512_set1_epi32(ai+offset-mb);
  __m512i sum=_mm512_setzero_si512();
  int64_t i=0;
  for(;i+16<=n;i+=16){
    __m512 y=_mm512_add_ps(_mm512_div_ps(_mm512_loadu_ps(x+i),vs),vM);
    __m512i c=_mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(_mm512_castps_si512(y),L),H),C);
    sum=_mm512_add_epi32(sum,c);_mm_storeu_si128((__m128i*)(codes+i),_mm512_cvtepi32_epi8(c));}
  return _mm512_reduce_add_epi32(sum);}
__attribute__((noinline)) int32_t encD(const float* x,int64_t n,float s,float add,float lo,float hi,int32_t offset,uint8_t* codes){
  const float M=12582912.0f; int32_t mb; std::memcpy(&mb,&M,4);
  const __m512 vs=_mm512_set1_ps(s), vr=_mm512_set1_ps(1.0f/s), vM=_mm512_set1_ps(M), lim=_mm512_set1_ps(0.4999f);
  const int32_t ai=(int32_t)add;
  const __m512i L=_mm512_set1_epi32((int32_t)lo-ai+mb), H=_mm512_set1_epi32((int32_t)hi-ai+mb), C=_mm512_set1_epi32(ai+offset-mb);
  __m512i sum=_mm512_setzero_si512();
  int64_t i=0;
  for(;i+16<=n;i+=16){
    const __m512 v=_mm512_loadu_ps(x+i);
    __m512 y=_mm512_add_ps(_mm512_mul_ps(v,vr),vM);
    const __m512 d=_mm512_fmsub_ps(v,vr,_mm512_sub_ps(y,vM));
    if(_mm512_cmp_ps_mask(_mm512_abs_ps(d),lim,_CMP_GE_OQ)) y=_mm512_add_ps(_mm512_div_ps(v,vs),vM);
    __m512i c=_mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(_mm512_castps_si512(y),L),H),C);
    sum=_mm512_add_epi32(sum,c);_mm_storeu_si128((__m128i*)(codes+i),_mm512_cvtepi32_epi8(c));}
  return _mm512_reduce_add_epi32(sum);}
__attribute__((noinline)) int32_t encE(const float* x,int64_t n,float s,float add,float lo,float hi,int32_t offset,uint8_t* codes){
  // D + pack 4 vectors at once
  const float M=12582912.0f; int32_t mb; std::memcpy(&mb,&M,4);
  const __m512 vs=_mm512_set1_ps(s), vr=_mm512_set1_ps(1.0f/s), vM=_mm512_set1_ps(M), lim=_mm512_set1_ps(0.4999f);
  const int32_t ai=(int32_t)add;
  const __m512i L=_mm512_set1_epi32((int32_t)lo-ai+mb), H=_mm512_set1_epi32((int32_t)hi-ai+mb), C=_mm512_set1_epi32(ai+offset-mb);
  __m512i sum=_mm512_setzero_si512();
  int64_t i=0;
  auto one=[&](int64_t j){const __m512 v=_mm512_loadu_ps(x+j);
    __m512 y=_mm512_add_ps(_mm512_mul_ps(v,vr),vM);
    const __m512 d=_mm512_fmsub_ps(v,vr,_mm512_sub_ps(y,vM));
    if(_mm512_cmp_ps_mask(_mm512_abs_ps(d),lim,_CMP_GE_OQ)) y=_mm512_add_ps(_mm512_div_ps(v,vs),vM);
    __m512i c=_mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(_mm512_castps_si512(y),L),H),C);
    sum=_mm512_add_epi32(sum,c); return c;};
  const __m512i perm=_mm512_setr_epi32(0,4,8,12,1,5,9,13,2,6,10,14,3,7,11,15);
  for(;i+64<=n;i+=64){
    __m512i a=one(i),b=one(i+16),c=one(i+32),e=one(i+48);
    __m512i ab=_mm512_packus_epi32(a,b), ce=_mm512_packus_epi32(c,e);
    __m512i by=_mm512_packus_epi16(ab,ce);
    _mm512_storeu_si512(codes+i,_mm512_permutexvar_epi32(perm,by));}
  for(;i+16<=n;i+=16){ __m512i c=one(i); _mm_storeu_si128((__m128i*)(codes+i),_mm512_cvtepi32_epi8(c));}
  return _mm512_reduce_add_epi32(sum);}
int main(){
  const int n=576; std::vector<float> x(n); std::mt19937 g(1); std::normal_distribution<float> d;
  for(auto&v:x)v=d(g); float am=0; for(auto v:x) am=std::max(am,std::fabs(v)); float s=am/7;
  uint8_t c1[640],c2[640];
  auto run=[&](auto f,const char*name){ int32_t r=0; auto t0=std::chrono::steady_clock::now(); for(int k=0;k<400000;++k){r+=f(x.data(),n,s,0.f,-8.f,7.f,8,c2); asm volatile(""::"r"(c2):"memory");}
    double ns=std::chrono::duration<double,std::nano>(std::chrono::steady_clock::now()-t0).count()/400000/(n/16.0);
    encA(x.data(),n,s,0.f,-8.f,7.f,8,c1); printf("%s %.2f ns/vec same=%d\n",name,ns,memcmp(c1,c2,n)==0);};
  for(int rep=0;rep<2;++rep){run(encA,"A div");run(encB,"B mul");run(encC,"C div+magic");run(encD,"D mul+magic+tiecheck");run(encE,"E D+pack4");}
}
