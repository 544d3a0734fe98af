#include <chrono>
#include <cstdio>
#include <cstdint>
#include <vector>
#include <random>
#include <algorithm>
__attribute__((noinline)) void gather(const uint8_t* codes, const int32_t* slot_column, int64_t groups, int64_t group, int32_t off, int8_t* xs_row, int32_t* corr, float* scale, const float* gs, float xsc){
      for (int64_t g = 0; g < groups; ++g) {
        int32_t sum = 0;
        for (int64_t s = g * group; s < (g + 1) * group; ++s) {
          const int32_t c = slot_column[s];
          const int32_t q = c < 0 ? 0 : static_cast<int32_t>(codes[c]) - off;
          xs_row[s] = static_cast<int8_t>(q);
          sum += q;
        }
        corr[g] = -128 * sum;
        scale[g] = gs[g] * xsc;
      }
}
int main(){
  for (int K : {576, 1536}) {
    std::vector<int32_t> sc(K); for(int i=0;i<K;++i) sc[i]=i; std::shuffle(sc.begin(),sc.end(),std::mt19937(1)); for(int i=0;i<K;i+=50) sc[i]=-1;
    std::vector<uint8_t> codes(K,100); std::vector<int8_t> xs(K); std::vector<int32_t> corr(K/16); std::vector<float> scale(K/16), gs(K/16,1);
    double best=1e9; for(int r=0;r<20000;++r){auto t0=std::chrono::steady_clock::now(); gather(codes.data(),sc.data(),K/16,16,128,xs.data(),corr.data(),scale.data(),gs.data(),0.5f); double s=std::chrono::duration<double>(std::chrono::steady_clock::now()-t0).count(); best=std::min(best,s);}
    printf("K=%d gather %.0f ns\n",K,best*1e9);
  }
}
