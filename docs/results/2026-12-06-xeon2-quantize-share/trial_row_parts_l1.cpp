#include <chrono>
#include <cstdio>
#include <vector>
#include <cstring>
#include "kernels/cpu/act_quant_kernels.h"
#include "kernels/cpu/fwht_kernels.h"
using namespace quarot::act_quant_detail;
int main(){
  const auto& k = act_quant_kernels_avx512();
  std::vector<float> x(1536), out(1536), buf(1536); for(int i=0;i<1536;++i) x[i]=(i*37%101)*0.01f-0.5f;
  uint8_t codes[1600];
  for(int rep=0;rep<2;++rep){
  const int N=200000;
  auto t0=std::chrono::steady_clock::now();
  for(int i=0;i<N;++i){ k.mix_paley12(0.288675f, x.data(), 128, 0.0883883f, out.data()); asm volatile(""::"r"(out.data()):"memory"); }
  auto t1=std::chrono::steady_clock::now();
  for(int i=0;i<N;++i){ for(int a=0;a<12;++a) quarot::fwht_detail::fwht_contiguous_avx512(x.data()+a*128, buf.data()+a*128, 128); asm volatile(""::"r"(buf.data()):"memory"); }
  auto t2=std::chrono::steady_clock::now();
  int32_t s=0;
  for(int i=0;i<N;++i){ s+=k.encode(out.data(),1536,0.01f,0.f,-8.f,7.f,8,codes); asm volatile(""::"r"(codes):"memory"); }
  auto t3=std::chrono::steady_clock::now();
  float am=0;
  for(int i=0;i<N;++i){ k.finite_abs_max(out.data(),1536,&am); asm volatile(""::"r"(&am):"memory"); }
  auto t4=std::chrono::steady_clock::now();
  auto ns=[&](auto a, auto b){return std::chrono::duration<double,std::nano>(b-a).count()/N;};
  printf("mix %.0f ns  fwht12x128 %.0f ns  encode %.0f ns  absmax %.0f ns per 1536 row (%d)\n", ns(t0,t1), ns(t1,t2), ns(t2,t3), ns(t3,t4), s&1);
  }
}
