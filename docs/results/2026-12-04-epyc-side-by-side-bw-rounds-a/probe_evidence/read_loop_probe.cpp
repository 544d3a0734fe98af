#include <omp.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <sys/mman.h>
int main(){
  int64_t n = (int64_t(512)<<20)/4;
  float* buf=(float*)aligned_alloc(2<<20,n*4); madvise(buf,n*4,MADV_HUGEPAGE);
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) buf[i] = static_cast<float>(i & 1023);
  for(int rep=0;rep<6;++rep){
    auto t0=std::chrono::steady_clock::now(); float total=0;
#pragma omp parallel reduction(+ : total)
    {
      float acc[16] = {};
#pragma omp for schedule(static)
      for (int64_t i = 0; i < n; i += 16) {
#pragma omp simd
        for (int j = 0; j < 16; ++j) acc[j] += buf[i + j];
      }
      for (float a : acc) total += a;
    }
    double s=std::chrono::duration<double>(std::chrono::steady_clock::now()-t0).count();
    printf("%.1f GB/s (%g)\n", n*4/s/1e9, total);
  }
}
