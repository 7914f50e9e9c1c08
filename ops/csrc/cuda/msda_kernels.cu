// CUDA kernels of the MSDA operator. See msda_kernels.h for the decomposition.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <atomic>
#include <type_traits>

#include "msda_kernels.h"

namespace mmsparse4d {
namespace cuda {
namespace {

constexpr int kWarpSize = 32;
constexpr int kMaxWarpsPerBlock = 8;
// Rows of warps splitting an anchor's samples: small blocks, so that a whole frame's
// anchors (900) run in one wave instead of leaving a partial last wave.
constexpr int kSampleWarps = 4;
// Channels per lane: up to 8, which gives one warp per anchor row at C = 256. The forward
// reads up to 32 bytes per corner and lane (two 16-byte loads for fp32); the backward, with
// more live values, 16 (and then splits an anchor's samples over up to 8 warp rows).
constexpr int kMaxVector = 8;
constexpr int kForwardVectorBytes = 32;
constexpr int kBackwardVectorBytes = 16;
constexpr int kBackwardSampleWarps = 8;
// The kernels are latency-bound gathers and need warps in flight. The forward is held to
// 72 registers per thread: 7 blocks of 4 warps per SM, 924 blocks on an H100, so a frame's
// 900 anchors run in one wave (at 64, 8 blocks per SM, it was 2% slower: a frame has no
// eighth block per SM to give them). The backward, with more live values, is held to 80.
constexpr int kForwardMaxRegisters = 72;
constexpr int kBackwardMinBlocksPerSm = 3;
// Enough for 8 channels' sums and four corners' loads in flight without spilling; 32 warps
// per SM.
constexpr int kFeatureGradientMaxRegisters = 64;

#ifndef MSDA_DEPTH
#define MSDA_DEPTH 2
#endif
// fp16 blends an entry's four corners in half2, then adds the blend with its attention
// weight to the fp32 sums. Per entry and lane (8 channels) that is 4 weight conversions, 16
// packed FMAs, 8 conversions and 8 fp32 FMAs, about 36 instructions, against 32 conversions,
// 32 fp32 FMAs and 4 multiplies, about 68; the forward is bound by the instructions it issues
// per entry (performance.md). 10 cameras, two H100s: 0.0828 -> 0.0785 ms. The blend rounds each
// sample to fp16: emulated in numpy on corners uniform in (-1, 1), 1.1e-4 on average and
// 1.1e-3 at most a sample; against the float64 reference at the benchmark's shape the largest
// output error goes from 1.5e-5 to 2.8e-5 (the output's own fp16 rounding is 1.5e-5 there).
// Not kept: a list's entries (up to 32) summed in half2 with each corner's coefficient
// rounded to fp16, 2% faster than the blend and 9.0e-5 at most. MSDA_HALF_BLEND 0 sums every
// corner in fp32, as the other dtypes do (fp64 in fp64).
#ifndef MSDA_HALF_BLEND
#define MSDA_HALF_BLEND 1
#endif
// The forward's 16-byte corner loads go as asynchronous copies into shared memory,
// MSDA_DEPTH entries deep per lane, so the next entry's four loads are in flight while this
// one is summed without holding registers for them (H100, msda_kernel_timing): fp16 at 10
// cameras 0.089 -> 0.083 ms, 20 cameras 0.168 -> 0.157; fp32 at C = 96 (4 channels a lane)
// 0.244 -> 0.223; fp32 at C = 256 unchanged. Not taken: 3 deep (20 cameras 0.208 ms: fewer
// blocks per SM; with 40-byte entries and 7 blocks, 10 cameras 0.085 against 0.083); copies
// running ahead across a warp's lists of 32 (0.099: more instructions per entry); 8-byte
// copies for halves at C = 96 (0.194 -> 0.229 ms: cp.async's 8-byte form goes through L1).
// MSDA_DEPTH 1 turns the copies off.
constexpr int kCopyDepth = MSDA_DEPTH;
constexpr int kCopyBytes = 16;

// cp.async exists from sm_80: code compiled for older architectures loads into registers.
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
#define MSDA_ARCH_COPIES 0
#else
#define MSDA_ARCH_COPIES 1
#endif

// Whether a lane's vector of VEC values of T goes by asynchronous copies (in the kernel, also
// only where its architecture has them).
template <typename T, int VEC>
constexpr bool copies_async() {
  return kCopyDepth > 1 && sizeof(T) * VEC == kCopyBytes;
}
// Shared memory of one warp's copies: depth x 4 corners x 32 lanes x 16 bytes.
constexpr int kCopyWarpBytes = kCopyDepth * 4 * kWarpSize * kCopyBytes;

// A device's properties and a kernel's attributes on it do not change while the process
// runs: the launchers read or set them once per device, not on every launch (devices past
// this many are asked every time).
constexpr int kCachedDevices = 64;

int current_device() {
  int device = -1;
  return cudaGetDevice(&device) == cudaSuccess ? device : -1;
}

bool cached_device(int device) { return device >= 0 && device < kCachedDevices; }

// Whether `device` can run the copies: the launcher sizes shared memory by it. A device below
// sm_80 cannot load code built for sm_80 or later, so the kernel it runs has no copies
// either; a newer device may run code built for an older one, which leaves the copies'
// memory unused. Where the capability cannot be read, the memory is reserved (always safe).
bool device_has_async_copies(int device) {
  static std::atomic<int> known[kCachedDevices];  // 0 not yet read, 1 no, 2 yes
  if (cached_device(device)) {
    const int value = known[device].load(std::memory_order_relaxed);
    if (value != 0) return value == 2;
  }
  int major = 0;
  if (device < 0 ||
      cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess) {
    return true;
  }
  if (cached_device(device)) known[device].store(major >= 8 ? 2 : 1, std::memory_order_relaxed);
  return major >= 8;
}

// Copies 16 bytes from global to shared memory bypassing L1, or writes zeros where `bytes`
// is 0 (a corner outside the map).
__device__ __forceinline__ void copy_async_16(uint32_t shared_address, const void* global,
                                              int bytes) {
#if MSDA_ARCH_COPIES
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address), "l"(global),
               "r"(bytes)
               : "memory");
#endif
}
__device__ __forceinline__ void copy_commit() {
#if MSDA_ARCH_COPIES
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}
template <int N>
__device__ __forceinline__ void copy_wait() {
#if MSDA_ARCH_COPIES
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

template <typename T>
struct Accumulate {
  using type = float;
};
template <>
struct Accumulate<double> {
  using type = double;
};

__device__ __forceinline__ float to_acc(float v) { return v; }
__device__ __forceinline__ double to_acc(double v) { return v; }
__device__ __forceinline__ float to_acc(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_acc(__nv_bfloat16 v) {
  // bf16 is the top half of an fp32: a shift, cheaper than the intrinsic's conversion.
  return __uint_as_float(static_cast<unsigned>(__bfloat16_as_ushort(v)) << 16);
}

template <typename T>
__device__ __forceinline__ T from_acc(typename Accumulate<T>::type v);
template <>
__device__ __forceinline__ float from_acc<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ double from_acc<double>(double v) {
  return v;
}
template <>
__device__ __forceinline__ __half from_acc<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// Raw bits of one element, so that packs are trivially copyable integers.
template <typename T>
struct Bits;
template <>
struct Bits<float> {
  using type = uint32_t;
};
template <>
struct Bits<double> {
  using type = uint64_t;
};
template <>
struct Bits<__half> {
  using type = uint16_t;
};
template <>
struct Bits<__nv_bfloat16> {
  using type = uint16_t;
};

template <typename T>
__device__ __forceinline__ typename Accumulate<T>::type bits_to_acc(typename Bits<T>::type bits);
template <>
__device__ __forceinline__ float bits_to_acc<float>(uint32_t bits) {
  return __uint_as_float(bits);
}
template <>
__device__ __forceinline__ double bits_to_acc<double>(uint64_t bits) {
  return __longlong_as_double(static_cast<long long>(bits));
}
template <>
__device__ __forceinline__ float bits_to_acc<__half>(uint16_t bits) {
  return __half2float(__ushort_as_half(bits));
}
template <>
__device__ __forceinline__ float bits_to_acc<__nv_bfloat16>(uint16_t bits) {
  // bf16 is the top half of an fp32.
  return __uint_as_float(static_cast<uint32_t>(bits) << 16);
}

template <typename T, int VEC>
struct alignas(sizeof(T) * VEC) Pack {
  typename Bits<T>::type bits[VEC];
  __device__ __forceinline__ typename Accumulate<T>::type get(int i) const {
    return bits_to_acc<T>(bits[i]);
  }
};

// Values 2i and 2i + 1 of a 2-byte pack as one 32-bit word (the first in the low half).
template <typename T, int VEC>
__device__ __forceinline__ uint32_t pair_word(const Pack<T, VEC>& pack, int i) {
  return static_cast<uint32_t>(pack.bits[2 * i]) |
         (static_cast<uint32_t>(pack.bits[2 * i + 1]) << 16);
}

// Converts a pack to the accumulation type; 2-byte formats convert two values at a time.
template <typename T, int VEC>
__device__ __forceinline__ void unpack(const Pack<T, VEC>& pack,
                                       typename Accumulate<T>::type (&out)[VEC]) {
  if constexpr (sizeof(T) == 2 && VEC % 2 == 0) {
#pragma unroll
    for (int i = 0; i < VEC; i += 2) {
      const uint32_t word = pair_word(pack, i / 2);
      if constexpr (std::is_same_v<T, __half>) {
        const float2 pair = __half22float2(*reinterpret_cast<const __half2*>(&word));
        out[i] = pair.x;
        out[i + 1] = pair.y;
      } else {
        out[i] = __uint_as_float(word << 16);
        out[i + 1] = __uint_as_float(word & 0xffff0000u);
      }
    }
  } else {
#pragma unroll
    for (int i = 0; i < VEC; ++i) out[i] = pack.get(i);
  }
}

// One aligned vector load of VEC elements (16 bytes at full width), read-only path.
template <typename T, int VEC, typename acc_t>
__device__ __forceinline__ void load_vector(const T* __restrict__ address, acc_t (&out)[VEC]) {
  const Pack<T, VEC> pack = *reinterpret_cast<const Pack<T, VEC>*>(address);
#pragma unroll
  for (int i = 0; i < VEC; ++i) out[i] = pack.get(i);
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
constexpr bool kVectorAtomics = true;  // float2/float4 atomicAdd on global memory
#else
constexpr bool kVectorAtomics = false;
#endif

template <int VEC>
__device__ __forceinline__ void atomic_add_vector(float* address, const float (&value)[VEC]) {
  if constexpr (kVectorAtomics && VEC % 4 == 0) {
#pragma unroll
    for (int i = 0; i < VEC; i += 4) {
      atomicAdd(reinterpret_cast<float4*>(address + i),
                make_float4(value[i], value[i + 1], value[i + 2], value[i + 3]));
    }
  } else if constexpr (kVectorAtomics && VEC % 2 == 0) {
#pragma unroll
    for (int i = 0; i < VEC; i += 2) {
      atomicAdd(reinterpret_cast<float2*>(address + i), make_float2(value[i], value[i + 1]));
    }
  } else {
#pragma unroll
    for (int i = 0; i < VEC; ++i) atomicAdd(address + i, value[i]);
  }
}

// Raw vector load (kept packed in registers until use: half the registers for fp16).
template <typename T, int VEC>
__device__ __forceinline__ Pack<T, VEC> load_pack(const T* __restrict__ address) {
  return *reinterpret_cast<const Pack<T, VEC>*>(address);
}

template <typename T, int VEC>
__device__ __forceinline__ Pack<T, VEC> zero_pack() {
  Pack<T, VEC> pack;
  // All-zero bits are +0.0 in every floating format used here.
#pragma unroll
  for (int i = 0; i < VEC; ++i) pack.bits[i] = 0;
  return pack;
}

template <int VEC>
__device__ __forceinline__ void atomic_add_vector(double* address, const double (&value)[VEC]) {
#pragma unroll
  for (int i = 0; i < VEC; ++i) atomicAdd(address + i, value[i]);
}

// Two fp32 values rounded into one 32-bit word of a 2-byte format (first value low).
__device__ __forceinline__ uint32_t pack_pair(__half, float low, float high) {
  const __half2 pair = __floats2half2_rn(low, high);
  return *reinterpret_cast<const uint32_t*>(&pair);
}
__device__ __forceinline__ uint32_t pack_pair(__nv_bfloat16, float low, float high) {
  const __nv_bfloat162 pair = __floats2bfloat162_rn(low, high);
  return *reinterpret_cast<const uint32_t*>(&pair);
}

// Adds fp32 contributions into a 2-byte gradient in its own format (the reduced-precision
// accumulation of the half backward): 8 or 4 values per vector reduction on sm_90, packed
// pairs elsewhere. Each addition rounds to the format.
template <typename H, int VEC>
__device__ __forceinline__ void atomic_add_vector_half(H* address, const float (&value)[VEC]) {
  constexpr bool is_half = std::is_same_v<H, __half>;
  if constexpr (kVectorAtomics && VEC % 8 == 0) {
#pragma unroll
    for (int i = 0; i < VEC; i += 8) {
      const uint32_t w0 = pack_pair(H(), value[i], value[i + 1]);
      const uint32_t w1 = pack_pair(H(), value[i + 2], value[i + 3]);
      const uint32_t w2 = pack_pair(H(), value[i + 4], value[i + 5]);
      const uint32_t w3 = pack_pair(H(), value[i + 6], value[i + 7]);
      if constexpr (is_half) {
        asm volatile("red.global.add.noftz.v4.f16x2 [%0], {%1, %2, %3, %4};" ::"l"(address + i),
                     "r"(w0), "r"(w1), "r"(w2), "r"(w3)
                     : "memory");
      } else {
        asm volatile("red.global.add.noftz.v4.bf16x2 [%0], {%1, %2, %3, %4};" ::"l"(address + i),
                     "r"(w0), "r"(w1), "r"(w2), "r"(w3)
                     : "memory");
      }
    }
  } else if constexpr (kVectorAtomics && VEC % 4 == 0) {
#pragma unroll
    for (int i = 0; i < VEC; i += 4) {
      const uint32_t w0 = pack_pair(H(), value[i], value[i + 1]);
      const uint32_t w1 = pack_pair(H(), value[i + 2], value[i + 3]);
      if constexpr (is_half) {
        asm volatile("red.global.add.noftz.v2.f16x2 [%0], {%1, %2};" ::"l"(address + i), "r"(w0),
                     "r"(w1)
                     : "memory");
      } else {
        asm volatile("red.global.add.noftz.v2.bf16x2 [%0], {%1, %2};" ::"l"(address + i), "r"(w0),
                     "r"(w1)
                     : "memory");
      }
    }
  } else if constexpr (VEC % 2 == 0) {
#pragma unroll
    for (int i = 0; i < VEC; i += 2) {
      if constexpr (is_half) {
        atomicAdd(reinterpret_cast<__half2*>(address + i),
                  __floats2half2_rn(value[i], value[i + 1]));
      } else {
        atomicAdd(reinterpret_cast<__nv_bfloat162*>(address + i),
                  __floats2bfloat162_rn(value[i], value[i + 1]));
      }
    }
  } else {
#pragma unroll
    for (int i = 0; i < VEC; ++i) {
      if constexpr (is_half) {
        atomicAdd(address + i, __float2half_rn(value[i]));
      } else {
        atomicAdd(address + i, __float2bfloat16_rn(value[i]));
      }
    }
  }
}

template <int VEC>
__device__ __forceinline__ void atomic_add_vector(__half* address, const float (&value)[VEC]) {
  atomic_add_vector_half<__half, VEC>(address, value);
}
template <int VEC>
__device__ __forceinline__ void atomic_add_vector(__nv_bfloat16* address,
                                                  const float (&value)[VEC]) {
  atomic_add_vector_half<__nv_bfloat16, VEC>(address, value);
}

// Bilinear corners of one (sample, level), staged in shared memory by one lane.
template <typename acc_t>
struct Entry {
  int pixel[4];     // row-major pixel inside the level, -1 when outside the map
  acc_t weight[4];  // bilinear weights of the corners
  acc_t frac_h, frac_w;
  int sample_level;  // sample * L + level, or -1 when the sample contributes nothing
  int sample;        // point * N + camera
  int block;         // camera * L + level
};

struct Layout {
  int channel_warps;  // warps side by side over the channels
  int sample_warps;   // rows of warps splitting the samples
};

template <typename acc_t>
struct SharedMemory {
  int64_t* start;
  int* height;
  int* width;
  Entry<acc_t>* entries;
  acc_t* reduce;

  __device__ SharedMemory(unsigned char* base, int blocks, int warps) {
    start = reinterpret_cast<int64_t*>(base);
    height = reinterpret_cast<int*>(start + blocks);
    width = height + blocks;
    const size_t offset = (reinterpret_cast<size_t>(width + blocks) + 15) & ~size_t(15);
    entries = reinterpret_cast<Entry<acc_t>*>(offset);
    reduce = reinterpret_cast<acc_t*>(entries + warps * kWarpSize);
  }

  static size_t bytes(int blocks, int warps, int reduce_elements) {
    return ((blocks * (sizeof(int64_t) + 2 * sizeof(int)) + 15) & ~size_t(15)) +
           warps * kWarpSize * sizeof(Entry<acc_t>) + reduce_elements * sizeof(acc_t);
  }
};

// Reads (H, W, start) of every (camera, level) into shared memory. A block whose
// metadata does not fit inside `features` is disabled (height 0), never read out of
// bounds: checking the values on the host would synchronise and break graph capture.
__device__ __forceinline__ void load_metadata(const MsdaShape& shape, const MsdaMeta& meta,
                                              int64_t* start, int* height, int* width) {
  const int blocks = static_cast<int>(shape.cams * shape.levels);
  const int threads = blockDim.x * blockDim.y;
  for (int i = threadIdx.y * blockDim.x + threadIdx.x; i < blocks; i += threads) {
    int64_t h, w, s;
    if (meta.meta_is_int64) {
      const int64_t* hw = static_cast<const int64_t*>(meta.spatial_shape);
      h = hw[2 * i];
      w = hw[2 * i + 1];
      s = static_cast<const int64_t*>(meta.scale_start_index)[i];
    } else {
      const int32_t* hw = static_cast<const int32_t*>(meta.spatial_shape);
      h = hw[2 * i];
      w = hw[2 * i + 1];
      s = static_cast<const int32_t*>(meta.scale_start_index)[i];
    }
    // h * w < 2^60 and the start is bounded before it is compared: no int64 overflow.
    const bool ok =
        h > 0 && w > 0 && h < (1 << 30) && w < (1 << 30) && s >= 0 && s <= shape.pixels - h * w;
    height[i] = ok ? static_cast<int>(h) : 0;
    width[i] = ok ? static_cast<int>(w) : 0;
    start[i] = ok ? s : 0;
  }
}

// The bilinear corners of location (x, y) in (0, 1)^2 on an h x w map (pixel centres at
// (i + 0.5) / size): row-major pixel of each corner (-1 outside the map), its weight, and
// the fractional offsets. False when the location is not strictly inside or the map is
// disabled (h == 0); written so that NaN fails every comparison and is rejected.
template <typename acc_t>
__device__ __forceinline__ bool bilinear_corners(acc_t x, acc_t y, int h, int w, int (&pixel)[4],
                                                 acc_t (&weight)[4], acc_t& frac_h, acc_t& frac_w) {
  if (!(x > acc_t(0) && x < acc_t(1) && y > acc_t(0) && y < acc_t(1)) || h == 0) return false;
  const acc_t h_im = y * static_cast<acc_t>(h) - acc_t(0.5);
  const acc_t w_im = x * static_cast<acc_t>(w) - acc_t(0.5);
  const acc_t h_floor = floor(h_im), w_floor = floor(w_im);
  const int h_low = static_cast<int>(h_floor), w_low = static_cast<int>(w_floor);
  const acc_t lh = h_im - h_floor, lw = w_im - w_floor;
  const acc_t hh = acc_t(1) - lh, hw = acc_t(1) - lw;
  const int hs[4] = {h_low, h_low, h_low + 1, h_low + 1};
  const int ws[4] = {w_low, w_low + 1, w_low, w_low + 1};
  const acc_t weights[4] = {hh * hw, hh * lw, lh * hw, lh * lw};
#pragma unroll
  for (int c = 0; c < 4; ++c) {
    const bool inside = hs[c] >= 0 && hs[c] < h && ws[c] >= 0 && ws[c] < w;
    pixel[c] = inside ? hs[c] * w + ws[c] : -1;
    weight[c] = weights[c];
  }
  frac_h = lh;
  frac_w = lw;
  return true;
}

// Lane `lane` of a warp computes entry `k` of the warp's entry list.
template <typename T, typename acc_t>
__device__ __forceinline__ Entry<acc_t> make_entry(const MsdaShape& shape, int64_t anchor_index,
                                                   int sample_row, int sample_rows, int64_t k,
                                                   int64_t entries, const T* __restrict__ location,
                                                   const int* height, const int* width) {
  Entry<acc_t> entry;
  entry.sample_level = -1;
  if (k >= entries) return entry;
  const int levels = static_cast<int>(shape.levels);
  const int level = static_cast<int>(k % levels);
  // Samples are visited camera-major (all points of camera 0, then camera 1, ...): the
  // blocks of a wave then read one camera's maps at a time, which stay in L2.
  const int visit = sample_row + sample_rows * static_cast<int>(k / levels);
  const int points = static_cast<int>(shape.points);
  const int cam = visit / points;
  const int sample = (visit % points) * static_cast<int>(shape.cams) + cam;
  const int64_t sample_index = anchor_index * shape.points * shape.cams + sample;
  const acc_t x = to_acc(location[2 * sample_index]);
  const acc_t y = to_acc(location[2 * sample_index + 1]);
  const int block = cam * levels + level;
  const int h = height[block], w = width[block];
  if (!bilinear_corners(x, y, h, w, entry.pixel, entry.weight, entry.frac_h, entry.frac_w)) {
    return entry;
  }
  entry.sample_level = sample * levels + level;
  entry.sample = sample;
  entry.block = block;
  return entry;
}

// Every lane computes one entry; the warp keeps only the valid ones, compacted in order
// (so the summation order, and the result, are deterministic). Returns their count.
template <typename T, typename acc_t>
__device__ __forceinline__ int stage_entries(Entry<acc_t>* stage, const MsdaShape& shape,
                                             int64_t anchor_index, int sample_row, int sample_rows,
                                             int64_t k, int64_t entries,
                                             const T* __restrict__ location, const int* height,
                                             const int* width, int lane) {
  const Entry<acc_t> entry = make_entry<T, acc_t>(shape, anchor_index, sample_row, sample_rows, k,
                                                  entries, location, height, width);
  const bool valid = entry.sample_level >= 0;
  const unsigned mask = __ballot_sync(0xffffffffu, valid);
  if (valid) stage[__popc(mask & ((1u << lane) - 1u))] = entry;
  __syncwarp();
  return __popc(mask);
}

__device__ __forceinline__ int64_t entries_of_row(const MsdaShape& shape, int row, int rows) {
  const int64_t samples = shape.points * shape.cams;
  const int64_t mine = row < samples ? (samples - row + rows - 1) / rows : 0;
  return mine * shape.levels;
}

// Where one thread sits in the block of an anchor (see the header's decomposition).
template <int VEC>
struct Lane {
  int lane, warp, sample_row;
  int64_t anchor_index, batch, channel, group, entries;
  bool active;

  __device__ Lane(const MsdaShape& shape, const Layout& layout) {
    lane = threadIdx.x % kWarpSize;
    const int channel_warp = threadIdx.x / kWarpSize;
    sample_row = threadIdx.y;
    warp = sample_row * layout.channel_warps + channel_warp;
    anchor_index = blockIdx.x;  // b * A + a
    batch = anchor_index / shape.anchors;
    channel = (static_cast<int64_t>(channel_warp) * kWarpSize + lane) * VEC;
    active = channel < shape.channels;
    group = active ? channel / (shape.channels / shape.groups) : 0;
    entries = entries_of_row(shape, sample_row, layout.sample_warps);
  }
};

// Adds one staged entry's weighted bilinear sample to the lane's VEC channels: its four
// corner loads are issued before the first use. One entry at a time, not two: with eight
// loads in flight the 2-byte paths spilled and the forward was 12-18% slower (H100, 6-20
// cameras). Offsets inside the sample's features are 32-bit (the launcher checks that
// pixels x channels fits), which saves the registers of 64-bit address arithmetic.
// The lane's first channel of a corner's feature row (`level_row` + `pixel` rows into the
// sample's features); 32-bit offsets (msda_forward_fits).
template <typename T>
__device__ __forceinline__ const T* corner_row(const T* __restrict__ feature_batch,
                                               uint32_t level_row, int pixel, uint32_t channels) {
  return feature_batch + (level_row + static_cast<uint32_t>(pixel)) * channels;
}

// acc += coef x one corner's vector.
template <typename T, int VEC, typename acc_t>
__device__ __forceinline__ void add_corner(acc_t coef, const Pack<T, VEC>& value,
                                           acc_t (&acc)[VEC]) {
  acc_t unpacked[VEC];
  unpack<T, VEC>(value, unpacked);
#pragma unroll
  for (int i = 0; i < VEC; ++i) acc[i] += coef * unpacked[i];
}

// Whether an entry's corners are blended in half2 (fp16, pairs of channels, MSDA_HALF_BLEND).
template <typename T, int VEC>
constexpr bool blends_in_half2() {
  return MSDA_HALF_BLEND && std::is_same_v<T, __half> && VEC % 2 == 0;
}

// An fp16 entry's four corners blended in half2, added to the fp32 sums
// with the entry's attention weight at the end.
template <int VEC>
struct HalfBlend {
  __half2 blend[VEC / 2];

  // Corner `corner` (0 first: it starts the blend) with its bilinear weight.
  __device__ __forceinline__ void add(int corner, float coef, const Pack<__half, VEC>& value) {
    const __half2 coef2 = __float2half2_rn(coef);
#pragma unroll
    for (int i = 0; i < VEC / 2; ++i) {
      const uint32_t word = pair_word(value, i);
      const __half2 pair = *reinterpret_cast<const __half2*>(&word);
      blend[i] = corner == 0 ? __hmul2(coef2, pair) : __hfma2(coef2, pair, blend[i]);
    }
  }

  __device__ __forceinline__ void finish(float w, float (&acc)[VEC]) const {
#pragma unroll
    for (int i = 0; i < VEC / 2; ++i) {
      const float2 pair = __half22float2(blend[i]);
      acc[2 * i] += w * pair.x;
      acc[2 * i + 1] += w * pair.y;
    }
  }
};

// acc += w x the entry's bilinear blend of its four corners, corner(c) giving corner c's
// pack (from registers or from the copies in shared memory).
template <typename T, int VEC, typename acc_t, typename Corner>
__device__ __forceinline__ void add_entry(acc_t w, const acc_t (&weight)[4], Corner corner,
                                          acc_t (&acc)[VEC]) {
  if constexpr (blends_in_half2<T, VEC>()) {
    HalfBlend<VEC> blend;
#pragma unroll
    for (int c = 0; c < 4; ++c) blend.add(c, weight[c], corner(c));
    blend.finish(w, acc);
  } else {
#pragma unroll
    for (int c = 0; c < 4; ++c) add_corner<T, VEC>(w * weight[c], corner(c), acc);
  }
}

template <typename T, int VEC, typename acc_t>
__device__ __forceinline__ void accumulate_entry(const Entry<acc_t>& entry,
                                                 const T* __restrict__ feature_batch,
                                                 const T* __restrict__ weight_anchor,
                                                 const int64_t* start, uint32_t channels,
                                                 int groups, int group, acc_t (&acc)[VEC]) {
  // Entry fields are re-read from shared memory where used rather than held in registers.
  const acc_t w = to_acc(weight_anchor[entry.sample_level * groups + group]);
  const uint32_t level_row = static_cast<uint32_t>(start[entry.block]);
  Pack<T, VEC> value[4];
#pragma unroll
  for (int c = 0; c < 4; ++c) {
    const int pixel = entry.pixel[c];
    value[c] = pixel >= 0 ? load_pack<T, VEC>(corner_row(feature_batch, level_row, pixel, channels))
                          : zero_pack<T, VEC>();
  }
  add_entry<T, VEC>(w, entry.weight, [&](int c) -> const Pack<T, VEC>& { return value[c]; }, acc);
}

template <typename T, int VEC>
__global__ void __maxnreg__(kForwardMaxRegisters)
    msda_forward_kernel(MsdaShape shape, MsdaMeta meta, Layout layout,
                        const T* __restrict__ features, const T* __restrict__ location,
                        const T* __restrict__ weights, T* __restrict__ output) {
  using acc_t = typename Accumulate<T>::type;
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  SharedMemory<acc_t> shared(shared_bytes, static_cast<int>(shape.cams * shape.levels),
                             layout.channel_warps * layout.sample_warps);
  load_metadata(shape, meta, shared.start, shared.height, shared.width);
  __syncthreads();
  const Lane<VEC> me(shape, layout);
  const int lane = me.lane, sample_row = me.sample_row;
  const int64_t anchor_index = me.anchor_index, batch = me.batch, C = shape.channels;
  const int64_t channel = me.channel, group = me.group, entries = me.entries;
  const bool active = me.active;
  const int64_t samples_per_anchor = shape.points * shape.cams;
  const T* feature_batch = features + batch * shape.pixels * C + channel;
  const T* weight_anchor =
      weights + anchor_index * samples_per_anchor * shape.levels * shape.groups;
  Entry<acc_t>* stage = shared.entries + me.warp * kWarpSize;
  // accumulate_entry's 32-bit arithmetic (msda_forward_fits).
  const uint32_t channels32 = static_cast<uint32_t>(C);
  const int groups32 = static_cast<int>(shape.groups), group32 = static_cast<int>(group);

  acc_t acc[VEC];
#pragma unroll
  for (int i = 0; i < VEC; ++i) acc[i] = acc_t(0);

  for (int64_t base = 0; base < entries; base += kWarpSize) {
    const int count =
        stage_entries<T, acc_t>(stage, shape, anchor_index, sample_row, layout.sample_warps,
                                base + lane, entries, location, shared.height, shared.width, lane);
    if constexpr (MSDA_ARCH_COPIES && copies_async<T, VEC>()) {
      constexpr int kSlotBytes = 4 * kWarpSize * kCopyBytes;  // one entry's four corners
      // The copies live in the reduction's memory, after the warps' entries.
      static_assert(sizeof(Entry<acc_t>) * kWarpSize % 16 == 0, "16-byte aligned copies");
      if (active) {
        unsigned char* copy_base =
            reinterpret_cast<unsigned char*>(shared.reduce) + me.warp * kCopyWarpBytes;
        const uint32_t copy_shared =
            static_cast<uint32_t>(__cvta_generic_to_shared(copy_base)) + lane * kCopyBytes;
        auto issue = [&](int j) {
          const Entry<acc_t>& e = stage[j];
          const uint32_t level_row = static_cast<uint32_t>(shared.start[e.block]);
          const uint32_t slot = copy_shared + (j % kCopyDepth) * kSlotBytes;
#pragma unroll
          for (int c = 0; c < 4; ++c) {
            const int pixel = e.pixel[c];
            const T* source = pixel >= 0 ? corner_row(feature_batch, level_row, pixel, channels32)
                                         : feature_batch;
            copy_async_16(slot + c * kWarpSize * kCopyBytes, source, pixel >= 0 ? kCopyBytes : 0);
          }
        };
#pragma unroll
        for (int j = 0; j < kCopyDepth - 1; ++j) {
          if (j < count) issue(j);
          copy_commit();
        }
        // The entry's attention weight is loaded one entry ahead too: read after the wait,
        // its latency stood between every entry's copies and its sums.
        auto weight_of = [&](int j) {
          return to_acc(weight_anchor[stage[j].sample_level * groups32 + group32]);
        };
        acc_t next_weight = count > 0 ? weight_of(0) : acc_t(0);
        for (int j = 0; j < count; ++j) {
          if (j + kCopyDepth - 1 < count) issue(j + kCopyDepth - 1);
          copy_commit();
          const acc_t w = next_weight;
          if (j + 1 < count) next_weight = weight_of(j + 1);
          copy_wait<kCopyDepth - 1>();
          const Entry<acc_t>& e = stage[j];
          const unsigned char* slot = copy_base + (j % kCopyDepth) * kSlotBytes + lane * kCopyBytes;
          // One 16-byte load from shared memory a corner (a reference would read it value by
          // value).
          add_entry<T, VEC>(
              w, e.weight,
              [&](int c) {
                return *reinterpret_cast<const Pack<T, VEC>*>(slot + c * kWarpSize * kCopyBytes);
              },
              acc);
        }
        copy_wait<0>();
      }
    } else if (active) {
      for (int j = 0; j < count; ++j) {
        accumulate_entry<T, VEC>(stage[j], feature_batch, weight_anchor, shared.start, channels32,
                                 groups32, group32, acc);
      }
    }
    __syncwarp();
  }

  T* out = output + anchor_index * C;
  if (layout.sample_warps == 1) {
    if (active) {
#pragma unroll
      for (int i = 0; i < VEC; ++i) out[channel + i] = from_acc<T>(acc[i]);
    }
    return;
  }
  __syncthreads();  // the reduction's memory holds the other warps' copies until here
  if (active) {
#pragma unroll
    for (int i = 0; i < VEC; ++i) shared.reduce[sample_row * C + channel + i] = acc[i];
  }
  __syncthreads();
  const int threads = blockDim.x * blockDim.y;
  for (int64_t c = threadIdx.y * blockDim.x + threadIdx.x; c < C; c += threads) {
    acc_t sum = acc_t(0);
    for (int row = 0; row < layout.sample_warps; ++row) sum += shared.reduce[row * C + c];
    out[c] = from_acc<T>(sum);
  }
}

template <typename acc_t>
__device__ __forceinline__ acc_t warp_sum(acc_t value, int width) {
  for (int offset = width / 2; offset > 0; offset /= 2) {
    value += __shfl_xor_sync(0xffffffffu, value, offset, width);
  }
  return value;
}

// G: the type grad_features accumulates in (the accumulation type, or T for the
// reduced-precision half backward).
template <typename T, int VEC, typename G>
__global__ void __launch_bounds__(kMaxWarpsPerBlock* kWarpSize, kBackwardMinBlocksPerSm)
    msda_backward_kernel(MsdaShape shape, MsdaMeta meta, Layout layout, int group_lanes,
                         const T* __restrict__ grad_output, const T* __restrict__ features,
                         const T* __restrict__ location, const T* __restrict__ weights,
                         G* __restrict__ grad_features,
                         typename Accumulate<T>::type* __restrict__ grad_location,
                         typename Accumulate<T>::type* __restrict__ grad_weights) {
  using acc_t = typename Accumulate<T>::type;
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  SharedMemory<acc_t> shared(shared_bytes, static_cast<int>(shape.cams * shape.levels),
                             layout.channel_warps * layout.sample_warps);
  load_metadata(shape, meta, shared.start, shared.height, shared.width);
  __syncthreads();
  const Lane<VEC> me(shape, layout);
  const int lane = me.lane, sample_row = me.sample_row;
  const int64_t anchor_index = me.anchor_index, batch = me.batch, C = shape.channels;
  const int64_t channel = me.channel, group = me.group, entries = me.entries;
  const bool active = me.active;
  const int64_t samples_per_anchor = shape.points * shape.cams;
  const int64_t weight_offset = anchor_index * samples_per_anchor * shape.levels * shape.groups;
  const int64_t feature_offset = batch * shape.pixels * C + channel;
  Entry<acc_t>* stage = shared.entries + me.warp * kWarpSize;

  acc_t go[VEC];
  if (active) {
    load_vector<T, VEC>(grad_output + anchor_index * C + channel, go);
  } else {
#pragma unroll
    for (int i = 0; i < VEC; ++i) go[i] = acc_t(0);
  }

  for (int64_t base = 0; base < entries; base += kWarpSize) {
    const int count =
        stage_entries<T, acc_t>(stage, shape, anchor_index, sample_row, layout.sample_warps,
                                base + lane, entries, location, shared.height, shared.width, lane);
    for (int j = 0; j < count; ++j) {
      const Entry<acc_t> entry = stage[j];
      const int sample = entry.sample;
      const int block = entry.block;
      const int64_t weight_index = weight_offset + entry.sample_level * shape.groups + group;
      acc_t grad_w = 0, grad_x = 0, grad_y = 0;
      if (active) {
        const acc_t w = to_acc(weights[weight_index]);
        const int64_t level_offset = feature_offset + shared.start[block] * C;
        Pack<T, VEC> value[4];
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          value[c] = entry.pixel[c] >= 0
                         ? load_pack<T, VEC>(features + level_offset +
                                             static_cast<int64_t>(entry.pixel[c]) * C)
                         : zero_pack<T, VEC>();
        }
        const acc_t lh = entry.frac_h, lw = entry.frac_w;
        const acc_t hh = acc_t(1) - lh, hw = acc_t(1) - lw;
        acc_t grad_lw = 0, grad_lh = 0;
#pragma unroll
        for (int i = 0; i < VEC; ++i) {
          const acc_t v0 = value[0].get(i), v1 = value[1].get(i);
          const acc_t v2 = value[2].get(i), v3 = value[3].get(i);
          const acc_t sampled = entry.weight[0] * v0 + entry.weight[1] * v1 + entry.weight[2] * v2 +
                                entry.weight[3] * v3;
          grad_w += go[i] * sampled;
          grad_lw += go[i] * (hh * (v1 - v0) + lh * (v3 - v2));
          grad_lh += go[i] * (hw * (v2 - v0) + lw * (v3 - v1));
        }
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          // Without a buffer the feature gradient is summed by destination instead.
          if (entry.pixel[c] < 0 || grad_features == nullptr) continue;
          const acc_t coef = w * entry.weight[c];
          acc_t contribution[VEC];
#pragma unroll
          for (int i = 0; i < VEC; ++i) contribution[i] = coef * go[i];
          atomic_add_vector<VEC>(
              grad_features + level_offset + static_cast<int64_t>(entry.pixel[c]) * C,
              contribution);
        }
        // d(w_im)/dx = W and d(h_im)/dy = H.
        grad_x = w * grad_lw * static_cast<acc_t>(shared.width[block]);
        grad_y = w * grad_lh * static_cast<acc_t>(shared.height[block]);
      }
      // Weights: sum over the lanes of one group, one atomic per group segment.
      if (group_lanes > 1) grad_w = warp_sum(grad_w, group_lanes);
      if (active && lane % group_lanes == 0) atomicAdd(grad_weights + weight_index, grad_w);
      // Locations: sum over every channel of the warp.
      grad_x = warp_sum(grad_x, kWarpSize);
      grad_y = warp_sum(grad_y, kWarpSize);
      if (lane == 0) {
        const int64_t location_index = (anchor_index * samples_per_anchor + sample) * 2;
        atomicAdd(grad_location + location_index, grad_x);
        atomicAdd(grad_location + location_index + 1, grad_y);
      }
    }
    __syncwarp();
  }
}

// The feature gradient by destination. Each (sample, level) entry
// e = (anchor_index * P * N + point * N + camera) * L + level adds coef * grad_output[anchor]
// to up to four feature rows (batch * pixels + start + pixel). Instead of adding with
// atomics into a buffer of the accumulation type (which must be cleared, and for 2-byte
// inputs cast at the end), the corners are listed per destination row (a count, a prefix
// sum, a fill: one integer atomic per corner, not one per channel) and summed in registers.
// A row's list is cut into pieces of at most kCornersPerPiece corners, one warp each, so
// that the rows of the coarse levels, where a box's key points crowd thousands of corners
// onto one pixel, do not leave one warp summing long after the others: a row of one piece
// is written directly in the input's dtype (zeros where nothing samples it); the pieces of
// a longer row leave fp32 partial sums that a last pass adds in order and writes. The order
// within a piece follows the fill's atomics, so the rounding of the sums may differ from
// run to run, as atomics' do.

// Key of one corner in the lists: entry * 4 + corner (entries < 2^29, checked by the host).
__device__ __forceinline__ int corner_key(int64_t entry, int corner) {
  return static_cast<int>(entry * 4 + corner);
}

// Shared memory of the kernels that need only the (camera, level) metadata.
struct MetadataMemory {
  int64_t* start;
  int* height;
  int* width;

  __device__ MetadataMemory(unsigned char* base, const MsdaShape& shape, const MsdaMeta& meta) {
    const int blocks = static_cast<int>(shape.cams * shape.levels);
    start = reinterpret_cast<int64_t*>(base);
    height = reinterpret_cast<int*>(start + blocks);
    width = height + blocks;
    load_metadata(shape, meta, start, height, width);
    __syncthreads();
  }
};

// One thread per entry: counts (kFill false) or lists (kFill true) the corners that land
// inside a map. `rows` is `counts` to count, the cursors (each row's first slot) to fill.
// Both passes must find the same corners, so they share this code and read the same
// locations on one stream (a corner counted and not listed would leave a key unwritten).
template <typename T, bool kFill>
__global__ void msda_list_corners_kernel(MsdaShape shape, MsdaMeta meta,
                                         const T* __restrict__ location, int* __restrict__ rows,
                                         int* __restrict__ keys) {
  using acc_t = typename Accumulate<T>::type;
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  const MetadataMemory shared(shared_bytes, shape, meta);
  // Entries < 2^29 (host-checked): 32-bit index arithmetic.
  const int levels = static_cast<int>(shape.levels), cams = static_cast<int>(shape.cams);
  const int samples_per_batch = static_cast<int>(shape.anchors * shape.points * shape.cams);
  const int entries = static_cast<int>(shape.batch) * samples_per_batch * levels;
  for (int e = blockIdx.x * blockDim.x + threadIdx.x; e < entries; e += gridDim.x * blockDim.x) {
    const int sample = e / levels;
    const int level = e - sample * levels;
    const int block = (sample % cams) * levels + level;
    int pixel[4];
    acc_t weight[4], frac_h, frac_w;
    if (!bilinear_corners(to_acc(location[2 * static_cast<int64_t>(sample)]),
                          to_acc(location[2 * static_cast<int64_t>(sample) + 1]),
                          shared.height[block], shared.width[block], pixel, weight, frac_h,
                          frac_w)) {
      continue;
    }
    const int64_t row_base = (sample / samples_per_batch) * shape.pixels + shared.start[block];
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      if (pixel[c] < 0) continue;
      if constexpr (kFill) {
        keys[atomicAdd(rows + row_base + pixel[c], 1)] = corner_key(e, c);
      } else {
        atomicAdd(rows + row_base + pixel[c], 1);
      }
    }
  }
}

constexpr int kCornersPerPiece = 128;

// One thread per row: its pieces (at least one, which writes the zeros of an empty row)
// and, for a row of several, the same count again (its fp32 partials); 0 otherwise.
// pieces is [2, rows]: the two counts of a row, `rows` apart.
__global__ void msda_count_pieces_kernel(int64_t rows, const int* __restrict__ counts,
                                         int* __restrict__ pieces) {
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; row < rows;
       row += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int count = max(1, (counts[row] + kCornersPerPiece - 1) / kCornersPerPiece);
    pieces[row] = count;
    pieces[rows + row] = count > 1 ? count : 0;
  }
}

// One thread per row: writes the row's index into each of its pieces' slots.
__global__ void msda_piece_rows_kernel(int64_t rows, const int* __restrict__ pieces,
                                       const int* __restrict__ piece_ends,
                                       int* __restrict__ piece_row) {
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; row < rows;
       row += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int end = piece_ends[row];
    for (int piece = end - pieces[row]; piece < end; ++piece) piece_row[piece] = row;
  }
}

// One warp per piece: its corners summed in acc_t, VEC channels per lane; written in T to
// the row (the row's only piece) or in acc_t to the partials (one of several).
template <typename T, int VEC>
__global__ void __maxnreg__(kFeatureGradientMaxRegisters)
    msda_feature_gradient_kernel(MsdaShape shape, MsdaMeta meta, const T* __restrict__ grad_output,
                                 const T* __restrict__ location, const T* __restrict__ weights,
                                 const int* __restrict__ ends, const int* __restrict__ counts,
                                 const int* __restrict__ keys, const int* __restrict__ pieces,
                                 const int* __restrict__ piece_ends,
                                 const int* __restrict__ partial_ends,
                                 const int* __restrict__ piece_row,
                                 typename Accumulate<T>::type* __restrict__ partials,
                                 T* __restrict__ grad_features) {
  using acc_t = typename Accumulate<T>::type;
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  const MetadataMemory shared(shared_bytes, shape, meta);
  const int64_t rows = shape.batch * shape.pixels;
  const int lane = threadIdx.x % kWarpSize;
  const int64_t piece =
      static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarpSize) + threadIdx.x / kWarpSize;
  if (piece >= piece_ends[rows - 1]) return;  // whole warps: a piece is one warp's
  const int64_t row = piece_row[piece];
  const int row_pieces = pieces[row];
  const int index = static_cast<int>(piece - (piece_ends[row] - row_pieces));
  const int row_begin = ends[row] - counts[row];
  const int begin = row_begin + index * kCornersPerPiece;
  const int end = min(ends[row], begin + kCornersPerPiece);
  const int64_t C = shape.channels, G = shape.groups;
  const int levels = static_cast<int>(shape.levels), cams = static_cast<int>(shape.cams);
  const int samples_per_anchor = static_cast<int>(shape.points * shape.cams);
  // A row of several pieces: its partials' slots end at partial_ends[row].
  acc_t* partial =
      row_pieces > 1 ? partials + (static_cast<int64_t>(partial_ends[row]) - row_pieces + index) * C
                     : nullptr;
  for (int64_t chunk = 0; chunk < C; chunk += kWarpSize * VEC) {
    const int64_t channel = chunk + static_cast<int64_t>(lane) * VEC;
    const bool active = channel < C;
    const int64_t group = active ? channel / (C / G) : 0;
    acc_t acc[VEC];
#pragma unroll
    for (int i = 0; i < VEC; ++i) acc[i] = acc_t(0);
    for (int base = begin; base < end; base += kWarpSize) {
      const int count = min(kWarpSize, end - base);
      // Lane j decodes corner base + j: its entry, anchor and bilinear weight.
      int entry = 0, anchor = 0;
      acc_t corner_weight = 0;
      if (lane < count) {
        const int key = keys[base + lane];
        entry = key >> 2;
        const int sample = entry / levels;
        const int block = (sample % cams) * levels + (entry - sample * levels);
        anchor = sample / samples_per_anchor;
        int pixel[4];
        acc_t weight[4], frac_h, frac_w;
        bilinear_corners(to_acc(location[2 * static_cast<int64_t>(sample)]),
                         to_acc(location[2 * static_cast<int64_t>(sample) + 1]),
                         shared.height[block], shared.width[block], pixel, weight, frac_h, frac_w);
        const int corner = key & 3;  // selected, not indexed: an index would spill the array
        corner_weight = corner == 0   ? weight[0]
                        : corner == 1 ? weight[1]
                        : corner == 2 ? weight[2]
                                      : weight[3];
      }
#pragma unroll 4
      for (int j = 0; j < count; ++j) {
        const int e = __shfl_sync(0xffffffffu, entry, j);
        const int a = __shfl_sync(0xffffffffu, anchor, j);
        const acc_t bilinear = __shfl_sync(0xffffffffu, corner_weight, j);
        if (!active) continue;
        const acc_t coef = bilinear * to_acc(weights[static_cast<int64_t>(e) * G + group]);
        acc_t go[VEC];
        load_vector<T, VEC>(grad_output + a * C + channel, go);
#pragma unroll
        for (int i = 0; i < VEC; ++i) acc[i] += coef * go[i];
      }
    }
    if (!active) continue;
    if (partial != nullptr) {
#pragma unroll
      for (int i = 0; i < VEC; ++i) partial[channel + i] = acc[i];
    } else {
      Pack<T, VEC> out;
#pragma unroll
      for (int i = 0; i < VEC; ++i) {
        const T value = from_acc<T>(acc[i]);
        out.bits[i] = *reinterpret_cast<const typename Bits<T>::type*>(&value);
      }
      *reinterpret_cast<Pack<T, VEC>*>(grad_features + row * C + channel) = out;
    }
  }
}

// One warp per row of several pieces: their partials added in order, written in T.
template <typename T, int VEC>
__global__ void msda_combine_pieces_kernel(
    int64_t rows, int64_t channels, const int* __restrict__ pieces,
    const int* __restrict__ partial_ends, const typename Accumulate<T>::type* __restrict__ partials,
    T* __restrict__ grad_features) {
  using acc_t = typename Accumulate<T>::type;
  const int lane = threadIdx.x % kWarpSize;
  const int64_t row =
      static_cast<int64_t>(blockIdx.x) * (blockDim.x / kWarpSize) + threadIdx.x / kWarpSize;
  if (row >= rows || pieces[row] < 2) return;
  const int row_pieces = pieces[row];
  const acc_t* first = partials + (static_cast<int64_t>(partial_ends[row]) - row_pieces) * channels;
  for (int64_t channel = static_cast<int64_t>(lane) * VEC; channel < channels;
       channel += kWarpSize * VEC) {
    acc_t acc[VEC];
#pragma unroll
    for (int i = 0; i < VEC; ++i) acc[i] = acc_t(0);
    for (int p = 0; p < row_pieces; ++p) {
      acc_t part[VEC];
      load_vector<acc_t, VEC>(first + p * channels + channel, part);
#pragma unroll
      for (int i = 0; i < VEC; ++i) acc[i] += part[i];
    }
    Pack<T, VEC> out;
#pragma unroll
    for (int i = 0; i < VEC; ++i) {
      const T value = from_acc<T>(acc[i]);
      out.bits[i] = *reinterpret_cast<const typename Bits<T>::type*>(&value);
    }
    *reinterpret_cast<Pack<T, VEC>*>(grad_features + row * channels + channel) = out;
  }
}

int element_bytes(ScalarType dtype) {
  switch (dtype) {
    case ScalarType::kFloat32:
      return 4;
    case ScalarType::kFloat64:
      return 8;
    default:
      return 2;
  }
}

Layout make_layout(int64_t channels, int vec, int sample_warps) {
  Layout layout;
  const int64_t lanes = (channels + vec - 1) / vec;
  layout.channel_warps = static_cast<int>((lanes + kWarpSize - 1) / kWarpSize);
  layout.sample_warps =
      std::max(1, std::min(sample_warps, kMaxWarpsPerBlock / layout.channel_warps));
  return layout;
}

int vector_width(ScalarType dtype, int64_t channels, int64_t groups, const void* probe,
                 int max_bytes) {
  const int bytes = element_bytes(dtype);
  int vec = std::min(kMaxVector, max_bytes / bytes);
  // As few warps as cover the channels, then no wider than that needs: at C = 96, 4
  // channels a lane (24 lanes, one warp) rather than 2 (48 lanes over two warps), which
  // took the small configs' forward and backward 1.3-2.5x longer (H100).
  while (vec > 1 && (vec / 2) * kWarpSize >= channels) vec /= 2;
  // A vector never straddles two weight groups, and its loads stay aligned.
  while (vec > 1 && ((channels / groups) % vec != 0 ||
                     reinterpret_cast<uintptr_t>(probe) % (vec * bytes) != 0)) {
    vec /= 2;
  }
  return vec;
}

// Dynamic shared memory above the 48 KB that any launch may take needs the kernel's opt-in,
// up to the device's limit (227 KB a block on sm_90); past that the launch itself fails. The
// forward's copies take 16 KB a block (fp32 at C = 256: 32 KB) and the metadata 16 bytes per
// (camera, level): fp32 at C = 256 passes 48 KB from 48 cameras of 4 levels, the kernels that
// hold only the metadata from 768.
template <typename Kernel>
cudaError_t allow_dynamic_shared_memory(Kernel kernel, size_t bytes) {
  constexpr size_t kDefaultLimit = 48 * 1024;
  if (bytes <= kDefaultLimit) return cudaSuccess;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                              static_cast<int>(std::min<size_t>(bytes, INT32_MAX)));
}

template <typename T, int VEC>
cudaError_t launch_forward_typed(const MsdaShape& shape, const MsdaMeta& meta, const void* features,
                                 const void* location, const void* weights, void* output,
                                 cudaStream_t stream) {
  using acc_t = typename Accumulate<T>::type;
  const Layout layout = make_layout(shape.channels, VEC, kSampleWarps);
  const int warps = layout.channel_warps * layout.sample_warps;
  int reduce = layout.sample_warps > 1 ? layout.sample_warps * shape.channels : 0;
  const int device = current_device();
  const bool copies = copies_async<T, VEC>() && device_has_async_copies(device);
  if (copies) {
    const int copy_bytes = warps * kCopyWarpBytes;
    reduce = std::max<int>(reduce, (copy_bytes + sizeof(acc_t) - 1) / sizeof(acc_t));
  }
  const size_t shared =
      SharedMemory<acc_t>::bytes(static_cast<int>(shape.cams * shape.levels), warps, reduce);
  const dim3 block(kWarpSize * layout.channel_warps, layout.sample_warps);
  if (copies) {
    // Seven blocks of 16 KB of copies each per SM need more than the default carveout.
    static std::atomic<bool> carveout_set[kCachedDevices];
    if (!cached_device(device) || !carveout_set[device].load(std::memory_order_relaxed)) {
      const cudaError_t carveout = cudaFuncSetAttribute(
          msda_forward_kernel<T, VEC>, cudaFuncAttributePreferredSharedMemoryCarveout,
          cudaSharedmemCarveoutMaxShared);
      if (carveout != cudaSuccess) return carveout;
      if (cached_device(device)) carveout_set[device].store(true, std::memory_order_relaxed);
    }
  }
  const cudaError_t opt_in = allow_dynamic_shared_memory(msda_forward_kernel<T, VEC>, shared);
  if (opt_in != cudaSuccess) return opt_in;
  msda_forward_kernel<T, VEC>
      <<<static_cast<unsigned>(shape.batch * shape.anchors), block, shared, stream>>>(
          shape, meta, layout, static_cast<const T*>(features), static_cast<const T*>(location),
          static_cast<const T*>(weights), static_cast<T*>(output));
  return cudaGetLastError();
}

template <typename T, int VEC, typename G>
cudaError_t launch_backward_typed(const MsdaShape& shape, const MsdaMeta& meta,
                                  const void* grad_output, const void* features,
                                  const void* location, const void* weights, void* grad_features,
                                  void* grad_location, void* grad_weights, cudaStream_t stream) {
  using acc_t = typename Accumulate<T>::type;
  const Layout layout = make_layout(shape.channels, VEC, kBackwardSampleWarps);
  const int warps = layout.channel_warps * layout.sample_warps;
  const size_t shared =
      SharedMemory<acc_t>::bytes(static_cast<int>(shape.cams * shape.levels), warps, 0);
  const int64_t lanes_per_group = shape.channels / shape.groups / VEC;
  // A power-of-two segment of lanes sums a group's weight gradient with shuffles.
  const bool power_of_two = (lanes_per_group & (lanes_per_group - 1)) == 0;
  const int group_lanes =
      (power_of_two && lanes_per_group <= kWarpSize) ? static_cast<int>(lanes_per_group) : 1;
  const dim3 block(kWarpSize * layout.channel_warps, layout.sample_warps);
  const cudaError_t opt_in = allow_dynamic_shared_memory(msda_backward_kernel<T, VEC, G>, shared);
  if (opt_in != cudaSuccess) return opt_in;
  msda_backward_kernel<T, VEC, G>
      <<<static_cast<unsigned>(shape.batch * shape.anchors), block, shared, stream>>>(
          shape, meta, layout, group_lanes, static_cast<const T*>(grad_output),
          static_cast<const T*>(features), static_cast<const T*>(location),
          static_cast<const T*>(weights), static_cast<G*>(grad_features),
          static_cast<acc_t*>(grad_location), static_cast<acc_t*>(grad_weights));
  return cudaGetLastError();
}

// The launches as functors templated on dtype and vector width (C++17, no template lambdas,
// so that every back end's toolchain compiles this file).
struct ForwardLaunch {
  const MsdaShape& shape;
  const MsdaMeta& meta;
  const void* features;
  const void* location;
  const void* weights;
  void* output;
  cudaStream_t stream;

  template <typename T, int VEC>
  cudaError_t operator()() const {
    return launch_forward_typed<T, VEC>(shape, meta, features, location, weights, output, stream);
  }
};

struct BackwardLaunch {
  const MsdaShape& shape;
  const MsdaMeta& meta;
  const void* grad_output;
  const void* features;
  const void* location;
  const void* weights;
  void* grad_features;
  void* grad_location;
  void* grad_weights;
  bool features_in_own_format;
  cudaStream_t stream;

  template <typename T, int VEC>
  cudaError_t operator()() const {
    using acc_t = typename Accumulate<T>::type;
    if constexpr (sizeof(T) == 2) {
      if (features_in_own_format) {
        return launch_backward_typed<T, VEC, T>(shape, meta, grad_output, features, location,
                                                weights, grad_features, grad_location, grad_weights,
                                                stream);
      }
    }
    return launch_backward_typed<T, VEC, acc_t>(shape, meta, grad_output, features, location,
                                                weights, grad_features, grad_location, grad_weights,
                                                stream);
  }
};

// Calls `launch.template operator()<T, VEC>()` for the dtype and vector width.
template <typename Launch>
cudaError_t dispatch(ScalarType dtype, int vec, const Launch& launch) {
  switch (dtype) {
    case ScalarType::kFloat32:
      if (vec == 8) return launch.template operator()<float, 8>();
      if (vec == 4) return launch.template operator()<float, 4>();
      if (vec == 2) return launch.template operator()<float, 2>();
      return launch.template operator()<float, 1>();
    case ScalarType::kFloat64:
      if (vec == 4) return launch.template operator()<double, 4>();
      if (vec == 2) return launch.template operator()<double, 2>();
      return launch.template operator()<double, 1>();
    case ScalarType::kFloat16:
      if (vec == 8) return launch.template operator()<__half, 8>();
      if (vec == 4) return launch.template operator()<__half, 4>();
      if (vec == 2) return launch.template operator()<__half, 2>();
      return launch.template operator()<__half, 1>();
    case ScalarType::kBFloat16:
      if (vec == 8) return launch.template operator()<__nv_bfloat16, 8>();
      if (vec == 4) return launch.template operator()<__nv_bfloat16, 4>();
      if (vec == 2) return launch.template operator()<__nv_bfloat16, 2>();
      return launch.template operator()<__nv_bfloat16, 1>();
  }
  return cudaErrorInvalidValue;
}

size_t metadata_bytes(const MsdaShape& shape) {
  return static_cast<size_t>(shape.cams * shape.levels) * (sizeof(int64_t) + 2 * sizeof(int));
}

template <typename T, int VEC>
cudaError_t launch_feature_gradient_typed(const MsdaShape& shape, const MsdaMeta& meta,
                                          const FeatureGradientLists& lists,
                                          const void* grad_output, const void* location,
                                          const void* weights, void* partials, void* grad_features,
                                          cudaStream_t stream) {
  using acc_t = typename Accumulate<T>::type;
  const int64_t rows = shape.batch * shape.pixels;
  constexpr int kWarpsPerBlock = kMaxWarpsPerBlock;
  const int64_t max_pieces = msda_max_pieces(shape);
  const cudaError_t opt_in =
      allow_dynamic_shared_memory(msda_feature_gradient_kernel<T, VEC>, metadata_bytes(shape));
  if (opt_in != cudaSuccess) return opt_in;
  msda_feature_gradient_kernel<T, VEC>
      <<<static_cast<unsigned>((max_pieces + kWarpsPerBlock - 1) / kWarpsPerBlock),
         kWarpsPerBlock * kWarpSize, metadata_bytes(shape), stream>>>(
          shape, meta, static_cast<const T*>(grad_output), static_cast<const T*>(location),
          static_cast<const T*>(weights), lists.ends, lists.counts, lists.keys, lists.pieces,
          lists.piece_ends, lists.partial_ends, lists.piece_row, static_cast<acc_t*>(partials),
          static_cast<T*>(grad_features));
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) return status;
  msda_combine_pieces_kernel<T, VEC>
      <<<static_cast<unsigned>((rows + kWarpsPerBlock - 1) / kWarpsPerBlock),
         kWarpsPerBlock * kWarpSize, 0, stream>>>(
          rows, shape.channels, lists.pieces, lists.partial_ends,
          static_cast<const acc_t*>(partials), static_cast<T*>(grad_features));
  return cudaGetLastError();
}

struct FeatureGradientLaunch {
  const MsdaShape& shape;
  const MsdaMeta& meta;
  const FeatureGradientLists& lists;
  const void* grad_output;
  const void* location;
  const void* weights;
  void* partials;
  void* grad_features;
  cudaStream_t stream;

  template <typename T, int VEC>
  cudaError_t operator()() const {
    return launch_feature_gradient_typed<T, VEC>(shape, meta, lists, grad_output, location, weights,
                                                 partials, grad_features, stream);
  }
};

// Counts (keys == nullptr) or lists the corners of every entry; VEC is unused.
struct ListCornersLaunch {
  const MsdaShape& shape;
  const MsdaMeta& meta;
  const void* location;
  int* rows;
  int* keys;
  cudaStream_t stream;

  template <typename T, int VEC>
  cudaError_t operator()() const {
    const int64_t entries = msda_entries(shape);
    constexpr int kThreads = 256;
    // A grid-stride loop: enough blocks to fill any current GPU several times over.
    const int64_t grid = std::min<int64_t>((entries + kThreads - 1) / kThreads, 1 << 16);
    const auto kernel =
        keys == nullptr ? msda_list_corners_kernel<T, false> : msda_list_corners_kernel<T, true>;
    const cudaError_t opt_in = allow_dynamic_shared_memory(kernel, metadata_bytes(shape));
    if (opt_in != cudaSuccess) return opt_in;
    kernel<<<static_cast<unsigned>(grid), kThreads, metadata_bytes(shape), stream>>>(
        shape, meta, static_cast<const T*>(location), rows, keys);
    return cudaGetLastError();
  }
};

}  // namespace

int msda_vector_width(ScalarType dtype, int64_t channels, int64_t groups, const void* features) {
  return vector_width(dtype, channels, groups, features, kForwardVectorBytes);
}

int64_t msda_max_channels(ScalarType dtype, int64_t channels, int64_t groups,
                          const void* features) {
  // The backward's narrower vectors bound both passes.
  return static_cast<int64_t>(kMaxWarpsPerBlock) * kWarpSize *
         vector_width(dtype, channels, groups, features, kBackwardVectorBytes);
}

// What both launchers need: C and G to divide by on the host (vector width, layout), G
// dividing C, and a pixel's index inside its level within an int (make_entry).
static bool msda_shape_is_valid(const MsdaShape& shape) {
  return shape.channels >= 1 && shape.groups >= 1 && shape.channels % shape.groups == 0 &&
         shape.pixels <= int64_t(INT32_MAX);
}

bool msda_forward_fits(const MsdaShape& shape) {
  return shape.pixels * shape.channels <= int64_t(UINT32_MAX);
}

cudaError_t launch_msda_forward(ScalarType dtype, const MsdaShape& shape, const MsdaMeta& meta,
                                const void* features, const void* sampling_location,
                                const void* weights, void* output, cudaStream_t stream) {
  if (shape.batch * shape.anchors == 0) return cudaSuccess;
  if (!msda_shape_is_valid(shape)) return cudaErrorInvalidValue;
  const int vec = msda_vector_width(dtype, shape.channels, shape.groups, features);
  if (shape.channels > msda_max_channels(dtype, shape.channels, shape.groups, features) ||
      !msda_forward_fits(shape)) {
    return cudaErrorInvalidConfiguration;
  }
  const ForwardLaunch launch{shape, meta, features, sampling_location, weights, output, stream};
  return dispatch(dtype, vec, launch);
}

cudaError_t launch_msda_backward(ScalarType dtype, const MsdaShape& shape, const MsdaMeta& meta,
                                 const void* grad_output, const void* features,
                                 const void* sampling_location, const void* weights,
                                 void* grad_features_acc, void* grad_location_acc,
                                 void* grad_weights_acc, bool half_features_in_own_format,
                                 cudaStream_t stream) {
  if (shape.batch * shape.anchors == 0) return cudaSuccess;
  if (!msda_shape_is_valid(shape)) return cudaErrorInvalidValue;
  // Both vector-loaded inputs must be aligned to the width: probe them together.
  const void* probe = reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(features) |
                                                    reinterpret_cast<uintptr_t>(grad_output));
  const int vec = vector_width(dtype, shape.channels, shape.groups, probe, kBackwardVectorBytes);
  if (shape.channels > msda_max_channels(dtype, shape.channels, shape.groups, probe)) {
    return cudaErrorInvalidConfiguration;
  }
  const BackwardLaunch launch{shape,
                              meta,
                              grad_output,
                              features,
                              sampling_location,
                              weights,
                              grad_features_acc,
                              grad_location_acc,
                              grad_weights_acc,
                              half_features_in_own_format,
                              stream};
  return dispatch(dtype, vec, launch);
}

bool msda_feature_gradient_by_destination_fits(const MsdaShape& shape) {
  // Corner keys (entry * 4 + corner), the lists' offsets and the pieces are int32, and a
  // piece's end (its start + kCornersPerPiece) and a warp's next base (+ 32) must not wrap.
  return 4 * msda_entries(shape) + 2 * kCornersPerPiece < (int64_t(1) << 31) &&
         msda_max_pieces(shape) < (int64_t(1) << 31);
}

int64_t msda_entries(const MsdaShape& shape) {
  return shape.batch * shape.anchors * shape.points * shape.cams * shape.levels;
}

int64_t msda_max_pieces(const MsdaShape& shape) {
  // Every row one piece, plus one for every kCornersPerPiece corners at most.
  return shape.batch * shape.pixels + 4 * msda_entries(shape) / kCornersPerPiece;
}

int64_t msda_max_partials(const MsdaShape& shape) {
  // Only rows of more than kCornersPerPiece corners have partials, ceil(n / K) <= 2n / K.
  return 2 * 4 * msda_entries(shape) / kCornersPerPiece;
}

cudaError_t launch_msda_count_corners(ScalarType dtype, const MsdaShape& shape,
                                      const MsdaMeta& meta, const void* sampling_location,
                                      int* counts, cudaStream_t stream) {
  if (msda_entries(shape) == 0) return cudaSuccess;
  const ListCornersLaunch launch{shape, meta, sampling_location, counts, nullptr, stream};
  return dispatch(dtype, 1, launch);
}

cudaError_t launch_msda_list_corners(ScalarType dtype, const MsdaShape& shape, const MsdaMeta& meta,
                                     const void* sampling_location, int* cursors, int* keys,
                                     cudaStream_t stream) {
  if (msda_entries(shape) == 0) return cudaSuccess;
  const ListCornersLaunch launch{shape, meta, sampling_location, cursors, keys, stream};
  return dispatch(dtype, 1, launch);
}

namespace {
unsigned row_blocks(int64_t rows, int threads) {
  return static_cast<unsigned>(std::min<int64_t>((rows + threads - 1) / threads, 1 << 16));
}
}  // namespace

cudaError_t launch_msda_count_pieces(const MsdaShape& shape, const int* counts, int* pieces,
                                     cudaStream_t stream) {
  const int64_t rows = shape.batch * shape.pixels;
  if (rows == 0) return cudaSuccess;
  msda_count_pieces_kernel<<<row_blocks(rows, 256), 256, 0, stream>>>(rows, counts, pieces);
  return cudaGetLastError();
}

cudaError_t launch_msda_piece_rows(const MsdaShape& shape, const int* pieces, const int* piece_ends,
                                   int* piece_row, cudaStream_t stream) {
  const int64_t rows = shape.batch * shape.pixels;
  if (rows == 0) return cudaSuccess;
  msda_piece_rows_kernel<<<row_blocks(rows, 256), 256, 0, stream>>>(rows, pieces, piece_ends,
                                                                    piece_row);
  return cudaGetLastError();
}

cudaError_t launch_msda_feature_gradient(ScalarType dtype, const MsdaShape& shape,
                                         const MsdaMeta& meta, const FeatureGradientLists& lists,
                                         const void* grad_output, const void* sampling_location,
                                         const void* weights, void* partials, void* grad_features,
                                         cudaStream_t stream) {
  if (shape.batch * shape.pixels == 0) return cudaSuccess;
  if (!msda_feature_gradient_by_destination_fits(shape)) return cudaErrorInvalidValue;
  // Vectors of grad_output and of the output stay aligned, and so do the partials' vectors
  // of VEC accumulation values (32 bytes for 2-byte inputs), or the vectors narrow.
  const void* probe = reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(grad_output) |
                                                    reinterpret_cast<uintptr_t>(grad_features));
  int vec = vector_width(dtype, shape.channels, shape.groups, probe, kBackwardVectorBytes);
  const uintptr_t accumulation_bytes = dtype == ScalarType::kFloat64 ? 8 : 4;
  while (vec > 1 && reinterpret_cast<uintptr_t>(partials) % (vec * accumulation_bytes) != 0) {
    vec /= 2;
  }
  const FeatureGradientLaunch launch{
      shape, meta, lists, grad_output, sampling_location, weights, partials, grad_features, stream};
  return dispatch(dtype, vec, launch);
}

}  // namespace cuda
}  // namespace mmsparse4d
