// Fused multi-step LIF-family forward/backward on CPU (the ``cpu`` kernel of spikeforge).
//
// Compiled at run time by spikeforge/neuron/kernels/cpu.py with torch.utils.cpp_extension.load_inline
// (which prepends #include <torch/extension.h> and generates the bindings of the four functions at the
// end of this file). The dynamics and the backward formulas are those of spikeforge/neuron/kernels/base.py:
//
//   H[t] = (lam*V[t-1] + gain*X[t]) + c,   c = (1 - lam)*v_rest
//   S[t] = H - vth >= 0   (> 0 when strict)
//   V[t] = S ? v_reset : H   (hard)   |   V[t] = H - (S ? vth : 0)   (soft)
//
// It must be built with -ffp-contract=off: the charge is rounded after every operation exactly like
// the torch reference, so that spikes agree bit for bit.
//
// Layout: x, spikes, h, v_seq are [T, N] contiguous. Work is split over N (at::parallel_for); each task
// walks blocks of kBlock neurons, keeping the per-neuron state (V, or delta and the parameter partials)
// in a small local buffer and sweeping t outer / neuron inner, so every access is contiguous and the
// inner loops vectorise.
//
// SIMD: the build targets the baseline ISA (no -march=native: a cached build may be loaded on another
// CPU). On x86-64 the float kernels are compiled a second time for AVX2 (without FMA) and chosen at run
// time when the CPU has it; both give the same bits. lif_simd() reads or forces the choice (for tests).

#include <ATen/Parallel.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define SPIKEFORGE_HAVE_AVX2_PATH 1
#define SPIKEFORGE_AVX2 __attribute__((target("avx2"), noinline))
#else
#define SPIKEFORGE_HAVE_AVX2_PATH 0
#endif

#if defined(__GNUC__)
#define SPIKEFORGE_INLINE inline __attribute__((always_inline))
#define SPIKEFORGE_NOINLINE __attribute__((noinline))
#else
#define SPIKEFORGE_INLINE inline
#define SPIKEFORGE_NOINLINE
#endif

namespace spikeforge_cpu {

constexpr int64_t kBlock = 2048;  // neurons per block: the per-neuron state (at most 4 x 16 KiB) stays in L2

// Surrogate.kernel_id of spikeforge/neuron/surrogate.py (its KERNEL_DERIVATIVES: the formula of each id).
enum Surrogate : int { kAtan = 0, kSigmoid = 1, kRect = 2, kTriangle = 3, kConst = 4 };

// ---------------------------------------------------------------------------------------- utilities

// 0: baseline ISA, 1: AVX2. Starts at the best level the CPU supports.
inline int detect_simd() {
#if SPIKEFORGE_HAVE_AVX2_PATH
  __builtin_cpu_init();  // harmless when libgcc's constructor already ran; needed if it has not
  return __builtin_cpu_supports("avx2") ? 1 : 0;
#else
  return 0;
#endif
}

inline std::atomic<int>& simd_level() {
  static std::atomic<int> level{detect_simd()};
  return level;
}

// Work per parallel task: at least ~64k neuron-steps, and at least one block.
inline int64_t grain_for(int64_t steps) {
  return std::max<int64_t>(kBlock, (int64_t(1) << 16) / std::max<int64_t>(steps, 1));
}

// A fresh large output is faulted in page by page as the kernel first writes it, which costs more than
// the kernel itself on 4 KiB pages. Ask for transparent huge pages on the 2 MiB-aligned interior of each
// new output (a hint: a no-op where THP is off or the memory is already mapped).
inline void advise_huge_pages(const at::Tensor& t) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr uintptr_t kHuge = uintptr_t(1) << 21;
  const size_t nbytes = t.numel() * t.element_size();
  if (nbytes < 4 * kHuge) return;
  const uintptr_t p = reinterpret_cast<uintptr_t>(t.data_ptr());
  const uintptr_t lo = (p + kHuge - 1) & ~(kHuge - 1), hi = (p + nbytes) & ~(kHuge - 1);
  if (hi > lo) (void)madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_HUGEPAGE);
#else
  (void)t;
#endif
}

// exp(x) in float from plain arithmetic, so that the sigmoid surrogate's loop vectorises (a libm call
// does not): Cody-Waite reduction x = n*ln2 + r (n rounded by adding 1.5*2^23), the degree-6 Cephes
// polynomial for exp(r), and 2^n through the exponent bits. Within 1.5 ulp of exp over the clamped
// range [-87.3, 88.4] (outside it the result saturates near 1.2e-38 / 2.4e38); NaN stays NaN.
SPIKEFORGE_INLINE float exp_vec(float x) {
  x = std::min(std::max(x, -87.33654475f), 88.37626266f);
  const float magic = 12582912.0f;
  const float shifted = x * 1.44269504088896341f + magic;
  const float fn = shifted - magic;
  int32_t ibits;
  std::memcpy(&ibits, &shifted, sizeof ibits);
  const int32_t n = ibits - 0x4B400000;
  float r = x - fn * 0.693359375f;
  r = r - fn * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r;
  p = p + 1.0f;
  const int32_t bits = (n + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

SPIKEFORGE_INLINE double exp_vec(double x) { return std::exp(x); }  // float64 is rare: libm, scalar

// ------------------------------------------------------------------------------------------ forward

template <typename T>
struct ForwardArgs {
  const T* x;   // [T, N]
  const T* v0;  // [N], or null: start at vreset (v_rest)
  T* s;         // [T, N] spikes
  T* h;         // [T, N] potential after charge
  T* vseq;      // [T, N] potential after reset (RETURN_V only)
  int64_t steps, n;
  T lam, gain, vth, fth, c, vreset;  // fth = fire_ratio * vth: the firing threshold (reset is by vth)
};

// One time step of one block: charge, fire, reset.
template <typename T, bool HARD, bool STRICT, bool RETURN_V>
SPIKEFORGE_INLINE void forward_row(const T* __restrict__ xt, T* __restrict__ v, T* __restrict__ st,
                                   T* __restrict__ ht, T* __restrict__ vt, int64_t nb, T lam, T gain, T vth, T fth,
                                   T c, T vreset) {
#pragma omp simd
  for (int64_t i = 0; i < nb; ++i) {
    const T a = lam * v[i];
    const T b = gain * xt[i];
    T hh = a + b;
    hh = hh + c;
    const T d = hh - fth;
    const bool spike = STRICT ? (d > T(0)) : (d >= T(0));
    const T vn = HARD ? (spike ? vreset : hh) : hh - (spike ? vth : T(0));
    ht[i] = hh;
    st[i] = spike ? T(1) : T(0);
    if (RETURN_V) vt[i] = vn;
    v[i] = vn;
  }
}

// Neurons [begin, end), block by block, t outer.
template <typename T, bool HARD, bool STRICT, bool RETURN_V>
SPIKEFORGE_INLINE void forward_range(const ForwardArgs<T>& a, int64_t begin, int64_t end) {
  alignas(64) T v[kBlock];
  for (int64_t b0 = begin; b0 < end; b0 += kBlock) {
    const int64_t nb = std::min(kBlock, end - b0);
    if (a.v0 != nullptr) {
      std::copy(a.v0 + b0, a.v0 + b0 + nb, v);
    } else {
      std::fill(v, v + nb, a.vreset);
    }
    for (int64_t t = 0; t < a.steps; ++t) {
      const int64_t off = t * a.n + b0;
      forward_row<T, HARD, STRICT, RETURN_V>(a.x + off, v, a.s + off, a.h + off,
                                             RETURN_V ? a.vseq + off : nullptr, nb, a.lam, a.gain, a.vth, a.fth,
                                             a.c, a.vreset);
    }
  }
}

template <typename T, bool HARD, bool STRICT, bool RETURN_V>
SPIKEFORGE_NOINLINE void forward_range_base(const ForwardArgs<T>& a, int64_t begin, int64_t end) {
  forward_range<T, HARD, STRICT, RETURN_V>(a, begin, end);
}

#if SPIKEFORGE_HAVE_AVX2_PATH
template <typename T, bool HARD, bool STRICT, bool RETURN_V>
SPIKEFORGE_AVX2 void forward_range_avx2(const ForwardArgs<T>& a, int64_t begin, int64_t end) {
  forward_range<T, HARD, STRICT, RETURN_V>(a, begin, end);
}
#endif

template <typename T, bool HARD, bool STRICT, bool RETURN_V>
void forward_impl(const ForwardArgs<T>& a) {
  const int simd = simd_level().load();
  at::parallel_for(0, a.n, grain_for(a.steps), [&](int64_t begin, int64_t end) {
#if SPIKEFORGE_HAVE_AVX2_PATH
    if constexpr (std::is_same<T, float>::value) {
      if (simd >= 1) return forward_range_avx2<T, HARD, STRICT, RETURN_V>(a, begin, end);
    }
#endif
    (void)simd;
    forward_range_base<T, HARD, STRICT, RETURN_V>(a, begin, end);
  });
}

template <typename T>
void forward_dispatch(bool hard, bool strict, bool return_v, const ForwardArgs<T>& a) {
  const int code = (hard ? 4 : 0) | (strict ? 2 : 0) | (return_v ? 1 : 0);
  switch (code) {
    case 0: return forward_impl<T, false, false, false>(a);
    case 1: return forward_impl<T, false, false, true>(a);
    case 2: return forward_impl<T, false, true, false>(a);
    case 3: return forward_impl<T, false, true, true>(a);
    case 4: return forward_impl<T, true, false, false>(a);
    case 5: return forward_impl<T, true, false, true>(a);
    case 6: return forward_impl<T, true, true, false>(a);
    default: return forward_impl<T, true, true, true>(a);
  }
}

// -------------------------------------------------------------------------------- no-grad window pass
//
// One window of n steps of the one-step methods' forward (spikeforge/neuron/kernels/window.py): charge,
// fire, reset as above (on X' = X*scale[c] + shift[c] when AFFINE), the weighted sums of X' and S, and the
// spikes packed eight to a byte (value j of a step in bit j%8 of byte j/8). Parallel over whole bytes
// (blocks of a multiple of 8 neurons); per block, t outer / neuron inner, with V and the sums updated in
// place (they stay in L1/L2 over the window).

constexpr int64_t kWindowBlock = 1024;  // neurons per block, a multiple of 8
static_assert(kWindowBlock % 8 == 0, "a block must own whole bytes");

template <typename T>
struct WindowArgs {
  const T* x;                  // [n, N]
  T* v;                        // [N] potential after reset, carried between windows
  T* isum;                     // [N] sum_t w[t] * X'[t]
  T* ssum;                     // [N] sum_t w[t] * S[t]
  const T* w;                  // [n]
  const T* scale;              // [C] (AFFINE only)
  const T* shift;              // [C] (AFFINE only)
  uint8_t* bits;               // [n, ceil(N/8)], rows bits_stride bytes apart
  int64_t steps, n, bits_stride, channels, inner;
  T lam, gain, vth, fth, c, vreset;
};

// One step of one block; the spikes go to st[i] as 0/1 bytes.
template <typename T, bool HARD, bool STRICT, bool AFFINE>
SPIKEFORGE_INLINE void window_row(const T* __restrict__ xt, const T* __restrict__ sc, const T* __restrict__ sh,
                                  T* __restrict__ v, T* __restrict__ isum, T* __restrict__ ssum,
                                  uint8_t* __restrict__ st, int64_t nb, T w, T lam, T gain, T vth, T fth, T c,
                                  T vreset) {
#pragma omp simd
  for (int64_t i = 0; i < nb; ++i) {
    T xv = xt[i];
    if (AFFINE) {
      const T m = xv * sc[i];
      xv = m + sh[i];
    }
    const T a = lam * v[i];
    const T b = gain * xv;
    T hh = a + b;
    hh = hh + c;
    const T d = hh - fth;
    const bool spike = STRICT ? (d > T(0)) : (d >= T(0));
    v[i] = HARD ? (spike ? vreset : hh) : hh - (spike ? vth : T(0));
    const T wx = w * xv;
    isum[i] = isum[i] + wx;
    ssum[i] = ssum[i] + (spike ? w : T(0));
    st[i] = spike ? uint8_t(1) : uint8_t(0);
  }
}

// Eight 0/1 bytes -> one byte, byte k at bit k: one multiply gathers them into the top byte without carries.
SPIKEFORGE_INLINE void pack_row(const uint8_t* __restrict__ st, uint8_t* __restrict__ out, int64_t nbytes) {
  for (int64_t k = 0; k < nbytes; ++k) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t u;
    std::memcpy(&u, st + 8 * k, sizeof u);
    out[k] = uint8_t((u * 0x0102040810204080ULL) >> 56);
#else
    uint8_t byte = 0;
    for (int j = 0; j < 8; ++j) byte = uint8_t(byte | (st[8 * k + j] << j));
    out[k] = byte;
#endif
  }
}

// Neurons [begin, end), begin a multiple of 8, block by block, t outer.
template <typename T, bool HARD, bool STRICT, bool AFFINE>
SPIKEFORGE_INLINE void window_range(const WindowArgs<T>& a, int64_t begin, int64_t end) {
  alignas(64) uint8_t st[kWindowBlock];
  alignas(64) T sc[AFFINE ? kWindowBlock : 1];
  alignas(64) T sh[AFFINE ? kWindowBlock : 1];
  for (int64_t b0 = begin; b0 < end; b0 += kWindowBlock) {
    const int64_t nb = std::min(kWindowBlock, end - b0);
    const int64_t nbytes = (nb + 7) / 8;
    std::fill(st + nb, st + 8 * nbytes, uint8_t(0));  // the bits past N of the last byte stay 0
    if (AFFINE) {  // the channel of each neuron, counted forward from that of b0 (no division per neuron)
      int64_t pos = b0 % a.inner, ch = (b0 / a.inner) % a.channels;
      for (int64_t i = 0; i < nb; ++i) {
        sc[i] = a.scale[ch];
        sh[i] = a.shift[ch];
        if (++pos == a.inner) {
          pos = 0;
          if (++ch == a.channels) ch = 0;
        }
      }
    }
    for (int64_t t = 0; t < a.steps; ++t) {
      window_row<T, HARD, STRICT, AFFINE>(a.x + t * a.n + b0, sc, sh, a.v + b0, a.isum + b0, a.ssum + b0, st, nb,
                                          a.w[t], a.lam, a.gain, a.vth, a.fth, a.c, a.vreset);
      pack_row(st, a.bits + t * a.bits_stride + b0 / 8, nbytes);
    }
  }
}

template <typename T, bool HARD, bool STRICT, bool AFFINE>
SPIKEFORGE_NOINLINE void window_range_base(const WindowArgs<T>& a, int64_t begin, int64_t end) {
  window_range<T, HARD, STRICT, AFFINE>(a, begin, end);
}

#if SPIKEFORGE_HAVE_AVX2_PATH
template <typename T, bool HARD, bool STRICT, bool AFFINE>
SPIKEFORGE_AVX2 void window_range_avx2(const WindowArgs<T>& a, int64_t begin, int64_t end) {
  window_range<T, HARD, STRICT, AFFINE>(a, begin, end);
}
#endif

template <typename T, bool HARD, bool STRICT, bool AFFINE>
void window_impl(const WindowArgs<T>& a) {
  const int simd = simd_level().load();
  const int64_t nbytes = (a.n + 7) / 8;
  // Split over bytes, so that each task owns whole bytes of every row of bits.
  at::parallel_for(0, nbytes, grain_for(a.steps) / 8, [&](int64_t b, int64_t e) {
    const int64_t begin = 8 * b, end = std::min(8 * e, a.n);
#if SPIKEFORGE_HAVE_AVX2_PATH
    if constexpr (std::is_same<T, float>::value) {
      if (simd >= 1) return window_range_avx2<T, HARD, STRICT, AFFINE>(a, begin, end);
    }
#endif
    (void)simd;
    window_range_base<T, HARD, STRICT, AFFINE>(a, begin, end);
  });
}

template <typename T>
void window_dispatch(bool hard, bool strict, bool affine, const WindowArgs<T>& a) {
  const int code = (hard ? 4 : 0) | (strict ? 2 : 0) | (affine ? 1 : 0);
  switch (code) {
#define SPIKEFORGE_CASE(C) \
    case C: return window_impl<T, bool((C) & 4), bool((C) & 2), bool((C) & 1)>(a);
    SPIKEFORGE_CASE(0) SPIKEFORGE_CASE(1) SPIKEFORGE_CASE(2) SPIKEFORGE_CASE(3)
    SPIKEFORGE_CASE(4) SPIKEFORGE_CASE(5) SPIKEFORGE_CASE(6)
    default: return window_impl<T, true, true, true>(a);
#undef SPIKEFORGE_CASE
  }
}

// ----------------------------------------------------------------------------------------- backward

// The two constants (a, b) of a surrogate derivative: Surrogate.kernel_constants() of
// spikeforge/neuron/surrogate.py, passed in as doubles and rounded once to T (as torch rounds a Python
// scalar in a tensor expression). Their meaning per surrogate id is KERNEL_DERIVATIVES there, not here.
template <typename T>
struct SurrogateConsts {
  T a;
  T b;
};

// sigma'(d), d = H - fire_ratio * V_th: the formula KERNEL_DERIVATIVES[SG] of surrogate.py.
template <typename T, int SG>
SPIKEFORGE_INLINE T surrogate_grad(T d, const SurrogateConsts<T>& k) {
  if (SG == kAtan) {  // a / (1 + (b d)^2)
    const T u = k.b * d;
    return k.a / (T(1) + u * u);
  } else if (SG == kSigmoid) {  // a s(a d) (1 - s(a d)); b unused
    const T sg = T(1) / (T(1) + exp_vec(-(k.a * d)));
    return k.a * sg * (T(1) - sg);
  } else if (SG == kRect) {  // 1[|d| < a] / b
    return (std::abs(d) < k.a ? T(1) : T(0)) / k.b;
  } else if (SG == kTriangle) {  // max(0, a - |d|) / b
    const T r = k.a - std::abs(d);
    return (r > T(0) ? r : T(0)) / k.b;
  } else {  // 1
    return T(1);
  }
}

template <typename T>
struct BackwardArgs {
  const T* gs;  // [T, N] dL/dS
  const T* gv;  // [T, N] dL/dV (HAS_GV only)
  const T* h;   // [T, N]
  const T* x;   // [T, N] (HAS_X only)
  const T* v0;  // [N], or null: V[-1] = v_rest
  T* gx;        // [T, N]
  T* gv0;       // [N], or null: not asked for
  T* glam;      // [N] per-neuron partials, summed over N by the caller; null when not asked for
  T* ggain;     // [N] (null without x)
  T* gvth;      // [N] or null
  int64_t steps, n;
  T lam, gain, vth, fth, ratio, vrest, vreset;  // fth = ratio * vth fires; the reset is by vth
  SurrogateConsts<T> k;
  bool strict;
};

// One time step t of one block, backwards. The per-neuron state of the sweep:
//   delta  = dL/dV[t] (all paths), carried backwards in time
//   acc_l  = sum_t dL/dH[t] * (V[t-1] - v_rest)      acc_k = sum_t dL/dH[t] * X[t]
//   acc_th = sum_t -g_S sigma' + delta dV/dV_th
// ``prev`` is h[t-1] (FROM_H: V[t-1] is recomputed from it and its spike) or v0 (t = 0); ``gvp`` is
// grad_v[t-1] (ADD_GV) or unused.
template <typename T, int SG, bool HARD, bool DETACH, bool HAS_X, bool ADD_GV, bool FROM_H>
SPIKEFORGE_INLINE void backward_row(const T* __restrict__ ht, const T* __restrict__ gst, const T* __restrict__ xt,
                                    const T* __restrict__ prev, const T* __restrict__ gvp, T* __restrict__ gxt,
                                    T* __restrict__ delta, T* __restrict__ acc_l, T* __restrict__ acc_k,
                                    T* __restrict__ acc_th, int64_t nb, const BackwardArgs<T>& a) {
  const T lam = a.lam, gain = a.gain, vth = a.vth, fth = a.fth, ratio = a.ratio, vrest = a.vrest, vreset = a.vreset;
  const SurrogateConsts<T> k = a.k;
  const bool at_zero = !a.strict;  // does H == V_th fire? (a run-time flag: fewer instantiations)
#pragma omp simd
  for (int64_t i = 0; i < nb; ++i) {
    const T hh = ht[i];
    const T d = hh - fth;
    const bool spike = (d > T(0)) | (at_zero & (d == T(0)));
    const T sg = surrogate_grad<T, SG>(d, k);
    T dvdh, dvdth;
    if (HARD) {
      dvdh = spike ? T(0) : T(1);
      dvdth = T(0);
      if (!DETACH) {
        const T jump = (vreset - hh) * sg;
        dvdh = dvdh + jump;
        dvdth = -(ratio * jump);
      }
    } else {
      dvdh = T(1);
      dvdth = spike ? T(-1) : T(0);
      if (!DETACH) {
        const T vs = vth * sg;
        dvdh = dvdh - vs;
        dvdth = dvdth + ratio * vs;
      }
    }
    const T gss = gst[i] * sg;
    const T dl = delta[i];
    const T gh = gss + dl * dvdh;
    gxt[i] = gain * gh;
    T vprev;
    if (FROM_H) {
      const T hq = prev[i];
      const T dq = hq - fth;
      const bool sq = (dq > T(0)) | (at_zero & (dq == T(0)));
      vprev = HARD ? (sq ? vreset : hq) : hq - (sq ? vth : T(0));
    } else {
      vprev = prev[i];
    }
    acc_l[i] += gh * (vprev - vrest);
    if (HAS_X) acc_k[i] += gh * xt[i];
    acc_th[i] += dl * dvdth - ratio * gss;
    T dn = lam * gh;
    if (ADD_GV) dn = dn + gvp[i];
    delta[i] = dn;
  }
}

template <typename T, int SG, bool HARD, bool DETACH, bool HAS_GV, bool HAS_X>
SPIKEFORGE_INLINE void backward_range(const BackwardArgs<T>& a, int64_t begin, int64_t end) {
  alignas(64) T delta[kBlock];
  alignas(64) T acc_l[kBlock];
  alignas(64) T acc_k[kBlock];
  alignas(64) T acc_th[kBlock];
  alignas(64) T rest[kBlock];  // V[-1] when no v0 is given
  std::fill(rest, rest + kBlock, a.vrest);
  const int64_t n = a.n;
  for (int64_t b0 = begin; b0 < end; b0 += kBlock) {
    const int64_t nb = std::min(kBlock, end - b0);
    const int64_t last = (a.steps - 1) * n + b0;
    for (int64_t i = 0; i < nb; ++i) {
      delta[i] = HAS_GV ? a.gv[last + i] : T(0);
      acc_l[i] = T(0);
      acc_k[i] = T(0);
      acc_th[i] = T(0);
    }
    for (int64_t t = a.steps - 1; t >= 1; --t) {
      const int64_t off = t * n + b0;
      backward_row<T, SG, HARD, DETACH, HAS_X, HAS_GV, true>(
          a.h + off, a.gs + off, HAS_X ? a.x + off : nullptr, a.h + off - n, HAS_GV ? a.gv + off - n : nullptr,
          a.gx + off, delta, acc_l, acc_k, acc_th, nb, a);
    }
    backward_row<T, SG, HARD, DETACH, HAS_X, false, false>(
        a.h + b0, a.gs + b0, HAS_X ? a.x + b0 : nullptr, a.v0 != nullptr ? a.v0 + b0 : rest, nullptr, a.gx + b0,
        delta, acc_l, acc_k, acc_th, nb, a);
    if (a.gv0 != nullptr) std::copy(delta, delta + nb, a.gv0 + b0);
    if (a.glam != nullptr) std::copy(acc_l, acc_l + nb, a.glam + b0);
    if (a.ggain != nullptr) std::copy(acc_k, acc_k + nb, a.ggain + b0);
    if (a.gvth != nullptr) std::copy(acc_th, acc_th + nb, a.gvth + b0);
  }
}

template <typename T, int SG, bool HARD, bool DETACH, bool HAS_GV, bool HAS_X>
SPIKEFORGE_NOINLINE void backward_range_base(const BackwardArgs<T>& a, int64_t begin, int64_t end) {
  backward_range<T, SG, HARD, DETACH, HAS_GV, HAS_X>(a, begin, end);
}

#if SPIKEFORGE_HAVE_AVX2_PATH
template <typename T, int SG, bool HARD, bool DETACH, bool HAS_GV, bool HAS_X>
SPIKEFORGE_AVX2 void backward_range_avx2(const BackwardArgs<T>& a, int64_t begin, int64_t end) {
  backward_range<T, SG, HARD, DETACH, HAS_GV, HAS_X>(a, begin, end);
}
#endif

template <typename T, int SG, bool HARD, bool DETACH, bool HAS_GV, bool HAS_X>
void backward_impl(const BackwardArgs<T>& a) {
  const int simd = simd_level().load();
  at::parallel_for(0, a.n, grain_for(a.steps), [&](int64_t begin, int64_t end) {
#if SPIKEFORGE_HAVE_AVX2_PATH
    // float only: float64 is rare, and skipping it halves the build time of the AVX2 copies.
    if constexpr (std::is_same<T, float>::value) {
      if (simd >= 1) return backward_range_avx2<T, SG, HARD, DETACH, HAS_GV, HAS_X>(a, begin, end);
    }
#endif
    (void)simd;
    backward_range_base<T, SG, HARD, DETACH, HAS_GV, HAS_X>(a, begin, end);
  });
}

// Run-time flags -> template arguments (strict stays a run-time flag).
template <typename T, int SG>
void backward_flags(bool hard, bool detach, bool has_gv, bool has_x, const BackwardArgs<T>& a) {
  const int code = (hard ? 8 : 0) | (detach ? 4 : 0) | (has_gv ? 2 : 0) | (has_x ? 1 : 0);
  switch (code) {
#define SPIKEFORGE_CASE(C) \
    case C: return backward_impl<T, SG, bool((C) & 8), bool((C) & 4), bool((C) & 2), bool((C) & 1)>(a);
    SPIKEFORGE_CASE(0) SPIKEFORGE_CASE(1) SPIKEFORGE_CASE(2) SPIKEFORGE_CASE(3)
    SPIKEFORGE_CASE(4) SPIKEFORGE_CASE(5) SPIKEFORGE_CASE(6) SPIKEFORGE_CASE(7)
    SPIKEFORGE_CASE(8) SPIKEFORGE_CASE(9) SPIKEFORGE_CASE(10) SPIKEFORGE_CASE(11)
    SPIKEFORGE_CASE(12) SPIKEFORGE_CASE(13) SPIKEFORGE_CASE(14)
    default: return backward_impl<T, SG, true, true, true, true>(a);
#undef SPIKEFORGE_CASE
  }
}

template <typename T>
void backward_dispatch(int sg_id, bool hard, bool detach, bool has_gv, bool has_x, const BackwardArgs<T>& a) {
  switch (sg_id) {
    case kAtan: return backward_flags<T, kAtan>(hard, detach, has_gv, has_x, a);
    case kSigmoid: return backward_flags<T, kSigmoid>(hard, detach, has_gv, has_x, a);
    case kRect: return backward_flags<T, kRect>(hard, detach, has_gv, has_x, a);
    case kTriangle: return backward_flags<T, kTriangle>(hard, detach, has_gv, has_x, a);
    default: return backward_flags<T, kConst>(hard, detach, has_gv, has_x, a);
  }
}

// ------------------------------------------------------------------------------------ input checks

inline void check_flat(const at::Tensor& t, const char* what, const at::Tensor& like) {
  TORCH_CHECK(t.device().is_cpu(), "spikeforge cpu kernel: ", what, " must be a CPU tensor");
  TORCH_CHECK(t.scalar_type() == like.scalar_type(), "spikeforge cpu kernel: ", what, " has dtype ",
              t.scalar_type(), ", expected ", like.scalar_type());
  TORCH_CHECK(t.is_contiguous(), "spikeforge cpu kernel: ", what, " must be contiguous");
}

inline void check_scalar(const at::Tensor& t, const char* what, const at::Tensor& like) {
  TORCH_CHECK(t.numel() == 1, "spikeforge cpu kernel: ", what, " must be a 0-dim tensor");
  TORCH_CHECK(t.scalar_type() == like.scalar_type(), "spikeforge cpu kernel: ", what, " has dtype ",
              t.scalar_type(), ", expected ", like.scalar_type());
}

// v0: [N] of the kernel's dtype, or empty (start at v_rest)
inline void check_v0(const at::Tensor& v0, const at::Tensor& like) {
  if (v0.numel() == 0) return;
  check_flat(v0, "v0", like);
  TORCH_CHECK(v0.dim() == 1 && v0.size(0) == like.size(1), "spikeforge cpu kernel: v0 must be [N] or empty");
}

}  // namespace spikeforge_cpu

// ------------------------------------------------------------------------------------ entry points

std::tuple<at::Tensor, at::Tensor, at::Tensor> lif_forward(const at::Tensor& x, const at::Tensor& v0,
                                                           const at::Tensor& decay, const at::Tensor& gain,
                                                           const at::Tensor& vth, double v_rest, bool hard,
                                                           bool strict, bool return_v, double fire_ratio,
                                                           bool store_h) {
  using namespace spikeforge_cpu;
  TORCH_CHECK(x.dim() == 2, "spikeforge cpu kernel: x must be [T, N], got ", x.sizes());
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              "spikeforge cpu kernel: x must be float32 or float64, got ", x.scalar_type());
  check_flat(x, "x", x);
  TORCH_CHECK(store_h, "spikeforge cpu kernel: always stores h (no recomputing backward)");
  check_v0(v0, x);
  check_scalar(decay, "decay", x);
  check_scalar(gain, "gain", x);
  check_scalar(vth, "vth", x);
  at::Tensor s = at::empty_like(x);
  at::Tensor h = at::empty_like(x);
  at::Tensor vseq = return_v ? at::empty_like(x) : at::empty({0}, x.options());
  advise_huge_pages(s);
  advise_huge_pages(h);
  if (return_v) advise_huge_pages(vseq);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lif_forward", [&] {
    ForwardArgs<scalar_t> a;
    a.x = x.data_ptr<scalar_t>();
    a.v0 = v0.numel() > 0 ? v0.data_ptr<scalar_t>() : nullptr;
    a.s = s.data_ptr<scalar_t>();
    a.h = h.data_ptr<scalar_t>();
    a.vseq = return_v ? vseq.data_ptr<scalar_t>() : nullptr;
    a.steps = x.size(0);
    a.n = x.size(1);
    a.lam = decay.item<scalar_t>();
    a.gain = gain.item<scalar_t>();
    a.vth = vth.item<scalar_t>();
    a.fth = scalar_t(fire_ratio) * a.vth;  // as the reference: fire_ratio * v_threshold in the tensor's dtype
    a.c = (scalar_t(1) - a.lam) * scalar_t(v_rest);  // as the reference: (1 - decay) * v_rest
    a.vreset = scalar_t(v_rest);
    pybind11::gil_scoped_release no_gil;
    forward_dispatch<scalar_t>(hard, strict, return_v, a);
  });
  return std::make_tuple(s, h, vseq);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> lif_backward(
    const at::Tensor& grad_s, const at::Tensor& grad_v, const at::Tensor& h, const at::Tensor& x,
    const at::Tensor& v0, const at::Tensor& decay, const at::Tensor& gain, const at::Tensor& vth, double v_rest,
    bool hard, bool detach, bool strict, int64_t sg_id, double sg_a, double sg_b, double fire_ratio, bool need_v0,
    bool need_decay, bool need_gain, bool need_vth) {
  using namespace spikeforge_cpu;
  TORCH_CHECK(h.dim() == 2, "spikeforge cpu kernel: h must be [T, N], got ", h.sizes());
  TORCH_CHECK(h.scalar_type() == at::kFloat || h.scalar_type() == at::kDouble,
              "spikeforge cpu kernel: h must be float32 or float64, got ", h.scalar_type());
  check_flat(h, "h", h);
  check_flat(grad_s, "grad_s", h);
  TORCH_CHECK(grad_s.sizes() == h.sizes(), "spikeforge cpu kernel: grad_s must have the shape of h");
  const bool has_gv = grad_v.numel() > 0;
  const bool has_x = need_gain;  // x is read for κ's partials only (this kernel always stores h)
  if (has_gv) {
    check_flat(grad_v, "grad_v", h);
    TORCH_CHECK(grad_v.sizes() == h.sizes(), "spikeforge cpu kernel: grad_v must be empty or have the shape of h");
  }
  if (has_x) {
    check_flat(x, "x", h);
    TORCH_CHECK(x.sizes() == h.sizes(), "spikeforge cpu kernel: κ's gradient needs x of the shape of h");
  }
  check_v0(v0, h);
  check_scalar(decay, "decay", h);
  check_scalar(gain, "gain", h);
  check_scalar(vth, "vth", h);
  TORCH_CHECK(sg_id >= 0 && sg_id <= 4, "spikeforge cpu kernel: unknown surrogate id ", sg_id);
  const int64_t n = h.size(1);
  at::Tensor gx = at::empty_like(h);
  // the per-neuron outputs: [N] where asked for (κ's when x is given), else empty and never written
  at::Tensor gv0 = at::empty({need_v0 ? n : 0}, h.options());
  at::Tensor glam = at::empty({need_decay ? n : 0}, h.options());
  at::Tensor ggain = at::empty({has_x ? n : 0}, h.options());
  at::Tensor gvth = at::empty({need_vth ? n : 0}, h.options());
  advise_huge_pages(gx);
  if (h.size(0) == 0) {  // no steps: nothing flows back to v0 or the parameters
    for (at::Tensor* t : {&gv0, &glam, &ggain, &gvth}) t->zero_();
    return std::make_tuple(gx, gv0, glam, ggain, gvth);
  }
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "lif_backward", [&] {
    BackwardArgs<scalar_t> a;
    a.gs = grad_s.data_ptr<scalar_t>();
    a.gv = has_gv ? grad_v.data_ptr<scalar_t>() : nullptr;
    a.h = h.data_ptr<scalar_t>();
    a.x = has_x ? x.data_ptr<scalar_t>() : nullptr;
    a.v0 = v0.numel() > 0 ? v0.data_ptr<scalar_t>() : nullptr;
    a.gx = gx.data_ptr<scalar_t>();
    a.gv0 = need_v0 ? gv0.data_ptr<scalar_t>() : nullptr;
    a.glam = need_decay ? glam.data_ptr<scalar_t>() : nullptr;
    a.ggain = has_x ? ggain.data_ptr<scalar_t>() : nullptr;
    a.gvth = need_vth ? gvth.data_ptr<scalar_t>() : nullptr;
    a.steps = h.size(0);
    a.n = n;
    a.lam = decay.item<scalar_t>();
    a.gain = gain.item<scalar_t>();
    a.vth = vth.item<scalar_t>();
    a.ratio = scalar_t(fire_ratio);
    a.fth = a.ratio * a.vth;
    a.vrest = scalar_t(v_rest);
    a.vreset = scalar_t(v_rest);  // hard reset: v_reset is v_rest
    a.k = SurrogateConsts<scalar_t>{scalar_t(sg_a), scalar_t(sg_b)};
    a.strict = strict;
    pybind11::gil_scoped_release no_gil;
    backward_dispatch<scalar_t>(int(sg_id), hard, detach, has_gv, has_x, a);
  });
  return std::make_tuple(gx, gv0, glam, ggain, gvth);
}

// One window of the no-grad pass, in place on v, input_sum, spike_sum and bits (see window_range). scale and
// shift are empty without the affine. decay, gain, vth are read from their tensors (never item()).
void lif_fire_window(const at::Tensor& x, const at::Tensor& v, const at::Tensor& input_sum,
                     const at::Tensor& spike_sum, const at::Tensor& weights, const at::Tensor& decay,
                     const at::Tensor& gain, const at::Tensor& vth, const at::Tensor& bits, const at::Tensor& scale,
                     const at::Tensor& shift, int64_t inner, double v_rest, bool hard, bool strict,
                     double fire_ratio) {
  using namespace spikeforge_cpu;
  TORCH_CHECK(x.dim() == 2, "spikeforge cpu kernel: x must be [n, N], got ", x.sizes());
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble,
              "spikeforge cpu kernel: x must be float32 or float64, got ", x.scalar_type());
  check_flat(x, "x", x);
  const int64_t steps = x.size(0), n = x.size(1);
  for (const at::Tensor* t : {&v, &input_sum, &spike_sum}) {
    check_flat(*t, "the window state", x);
    TORCH_CHECK(t->dim() == 1 && t->size(0) == n, "spikeforge cpu kernel: the window state must be [N]");
  }
  check_flat(weights, "weights", x);
  TORCH_CHECK(weights.dim() == 1 && weights.size(0) == steps, "spikeforge cpu kernel: weights must be [n]");
  check_scalar(decay, "decay", x);
  check_scalar(gain, "gain", x);
  check_scalar(vth, "vth", x);
  TORCH_CHECK(bits.device().is_cpu() && bits.scalar_type() == at::kByte && bits.dim() == 2 &&
                  bits.size(0) == steps && bits.size(1) == (n + 7) / 8 && (bits.size(1) <= 1 || bits.stride(1) == 1),
              "spikeforge cpu kernel: bits must be uint8 [n, ceil(N/8)] with contiguous rows, got ", bits.sizes());
  const bool affine = scale.numel() > 0;
  if (affine) {
    check_flat(scale, "scale", x);
    check_flat(shift, "shift", x);
    TORCH_CHECK(shift.numel() == scale.numel() && inner >= 1 && n % (scale.numel() * inner) == 0,
                "spikeforge cpu kernel: affine needs scale, shift [C] and N divisible by C*inner");
  }
  if (steps == 0 || n == 0) return;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lif_fire_window", [&] {
    WindowArgs<scalar_t> a;
    a.x = x.data_ptr<scalar_t>();
    a.v = v.data_ptr<scalar_t>();
    a.isum = input_sum.data_ptr<scalar_t>();
    a.ssum = spike_sum.data_ptr<scalar_t>();
    a.w = weights.data_ptr<scalar_t>();
    a.scale = affine ? scale.data_ptr<scalar_t>() : nullptr;
    a.shift = affine ? shift.data_ptr<scalar_t>() : nullptr;
    a.bits = bits.data_ptr<uint8_t>();
    a.steps = steps;
    a.n = n;
    a.bits_stride = bits.stride(0);
    a.channels = affine ? scale.numel() : 1;
    a.inner = affine ? inner : 1;
    a.lam = *decay.data_ptr<scalar_t>();
    a.gain = *gain.data_ptr<scalar_t>();
    a.vth = *vth.data_ptr<scalar_t>();
    a.fth = scalar_t(fire_ratio) * a.vth;  // as the reference: fire_ratio * v_threshold in the tensor's dtype
    a.c = (scalar_t(1) - a.lam) * scalar_t(v_rest);
    a.vreset = scalar_t(v_rest);
    pybind11::gil_scoped_release no_gil;
    window_dispatch<scalar_t>(hard, strict, affine, a);
  });
}

// The SIMD level in use: 0 baseline, 1 AVX2. ``level`` < 0 only reads it; otherwise it sets it to
// min(level, what this CPU supports) and returns the level now in use.
int64_t lif_simd(int64_t level) {
  using namespace spikeforge_cpu;
  if (level >= 0) simd_level().store(int(std::min<int64_t>(level, detect_simd())));
  return simd_level().load();
}
