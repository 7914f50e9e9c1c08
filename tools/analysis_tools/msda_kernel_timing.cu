// Times one source of the MSDA CUDA kernels without torch: the launchers of the file named by
// KERNELS, on random inputs made on the host (so that two kernel sources, e.g. a commit and
// its parent, are compared on the same inputs in the same run). Prints one markdown row.
//
//   git show REV:ops/csrc/cuda/msda_kernels.cu > /tmp/before.cu
//   nvcc -arch=sm_90 -O3 -std=c++20 --expt-relaxed-constexpr -I ops/csrc/cuda \
//       -DKERNELS='"/tmp/before.cu"' tools/analysis_tools/msda_kernel_timing.cu -o /tmp/before
//   (the working tree's kernels: -DKERNELS='"msda_kernels.cu"', found through -I)
//   /tmp/before forward fp16 10        # the benchmark_msda shape: 10 cameras at 960x544,
//                                      # A=900, P=13, G=8, C=256, 44% of samples inside
//   /tmp/before forward bf16 small     # the small configs' step (as the backward below)
//   /tmp/before backward bf16 16 96 4  # the small configs' step: B=16, 6 cameras at 480x272,
//                                      # A=400, C=96, G=4 (atomics into an fp32 buffer)
//
// The forward is checked against the operator's CPU kernel in float64 (the largest error is
// printed); the backward prints sums of |gradient| to compare two sources. Times are medians
// of 200 calls (50 for the backward) queued back to back between CUDA events, two input sets
// rotated so that the features do not stay in L2; the backward's time holds the zeroing of
// its buffers and, for 2-byte inputs, the cast of the fp32 feature-gradient buffer.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include KERNELS
// The operator's CPU kernels, the reference (found through -I ops/csrc/cuda).
#include "../cpu/msda_cpu_kernels.h"

using mmsparse4d::cuda::MsdaMeta;
using mmsparse4d::cuda::MsdaShape;
using mmsparse4d::cuda::ScalarType;

namespace {

#define CHECK_CUDA(call)                                                                      \
  do {                                                                                        \
    const cudaError_t status = (call);                                                        \
    if (status != cudaSuccess) {                                                              \
      std::fprintf(stderr, "msda_kernel_timing: %s at line %d\n", cudaGetErrorString(status), \
                   __LINE__);                                                                 \
      std::exit(1);                                                                           \
    }                                                                                         \
  } while (0)

// xorshift64: the same inputs for every kernel source.
struct Random {
  uint64_t state = 88172645463325252ull;
  double uniform() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return static_cast<double>(state >> 11) * (1.0 / 9007199254740992.0);
  }
  // A coordinate inside (0, 1) with probability `inside`, else in (-0.5, 0) or (1, 1.5).
  double location(double inside) {
    const double x = uniform();
    if (uniform() <= inside) return x;
    const double spill = uniform() * 0.5;
    return x < 0.5 ? -spill : 1 + spill;
  }
};

template <typename T>
T from_double(double v) {
  return static_cast<T>(static_cast<float>(v));
}
template <typename T>
double to_double(T v) {
  return static_cast<double>(static_cast<float>(v));
}

template <typename T>
ScalarType scalar_type();
template <>
ScalarType scalar_type<float>() {
  return ScalarType::kFloat32;
}
template <>
ScalarType scalar_type<__half>() {
  return ScalarType::kFloat16;
}
template <>
ScalarType scalar_type<__nv_bfloat16>() {
  return ScalarType::kBFloat16;
}

struct Problem {
  int batch, cams, levels, anchors, points, groups, channels;
  std::vector<int> heights, widths;  // per level
  int64_t pixels_per_camera() const {
    int64_t sum = 0;
    for (int l = 0; l < levels; ++l) sum += int64_t(heights[l]) * widths[l];
    return sum;
  }
  MsdaShape shape() const {
    return MsdaShape{batch, cams * pixels_per_camera(), channels, cams, levels, anchors, points,
                     groups};
  }
  size_t feature_count() const { return size_t(batch) * shape().pixels * channels; }
  size_t sample_count() const { return size_t(batch) * anchors * points * cams; }
  size_t weight_count() const { return sample_count() * levels * groups; }
  size_t output_count() const { return size_t(batch) * anchors * channels; }
};

template <typename T>
struct HostInputs {
  std::vector<T> features, location, weights;
};

// Features uniform in (-1, 1); 44% of the samples inside the image; weights a softmax over
// (point, camera, level) per anchor and group, as the model makes them.
template <typename T>
HostInputs<T> make_inputs(const Problem& p, Random& random) {
  HostInputs<T> in;
  in.features.resize(p.feature_count());
  for (auto& v : in.features) v = from_double<T>(random.uniform() * 2 - 1);
  const double axis_inside = std::sqrt(0.44);
  in.location.resize(2 * p.sample_count());
  for (auto& v : in.location) v = from_double<T>(random.location(axis_inside));
  const int per_anchor = p.points * p.cams * p.levels;
  in.weights.resize(p.weight_count());
  std::vector<double> logits(per_anchor);
  for (int64_t a = 0; a < int64_t(p.batch) * p.anchors; ++a) {
    for (int g = 0; g < p.groups; ++g) {
      double sum = 0;
      for (auto& logit : logits) sum += (logit = std::exp(random.uniform()));
      for (int i = 0; i < per_anchor; ++i) {
        in.weights[(a * per_anchor + i) * p.groups + g] = from_double<T>(logits[i] / sum);
      }
    }
  }
  return in;
}

// (H, W) and start row of every (camera, level), as the operator takes them (int32).
struct HostMetadata {
  std::vector<int> spatial_shape, start;
  explicit HostMetadata(const Problem& p) {
    int64_t start_index = 0;
    for (int n = 0; n < p.cams; ++n) {
      for (int l = 0; l < p.levels; ++l) {
        spatial_shape.push_back(p.heights[l]);
        spatial_shape.push_back(p.widths[l]);
        start.push_back(static_cast<int>(start_index));
        start_index += int64_t(p.heights[l]) * p.widths[l];
      }
    }
  }
};

// Batch 0's forward by the operator's CPU kernel in float64, for the check.
template <typename T>
std::vector<double> reference_forward(const Problem& p, const HostInputs<T>& in) {
  const MsdaShape shape = p.shape();
  mmsparse4d::cpu::Geometry geo{1,        shape.pixels, p.channels, p.cams, p.levels, p.anchors,
                                p.points, p.groups,     {},         {},     {}};
  const HostMetadata metadata(p);
  const std::string error =
      mmsparse4d::cpu::read_level_blocks(geo, metadata.spatial_shape.data(), metadata.start.data());
  if (!error.empty()) {
    std::fprintf(stderr, "msda_kernel_timing: %s\n", error.c_str());
    std::exit(1);
  }
  auto as_double = [](const std::vector<T>& values, size_t count) {
    std::vector<double> out(count);
    for (size_t i = 0; i < count; ++i) out[i] = to_double(values[i]);
    return out;
  };
  const size_t per_sample = p.sample_count() / p.batch;
  const std::vector<double> features = as_double(in.features, p.feature_count() / p.batch);
  const std::vector<double> location = as_double(in.location, 2 * per_sample);
  const std::vector<double> weights = as_double(in.weights, p.weight_count() / p.batch);
  std::vector<double> out(size_t(p.anchors) * p.channels);
  mmsparse4d::cpu::forward<double, double>(
      geo, features.data(), location.data(), weights.data(), out.data(),
      [](int64_t begin, int64_t end, int64_t, auto&& fn) { fn(begin, end); });
  return out;
}

template <typename T>
T* to_device(const std::vector<T>& host) {
  T* device = nullptr;
  CHECK_CUDA(cudaMalloc(&device, host.size() * sizeof(T)));
  CHECK_CUDA(cudaMemcpy(device, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return device;
}

struct DeviceInputs {
  void *features, *location, *weights;
};

// Median ms of `calls` calls queued back to back between events, set i % sets for call i.
template <typename Call>
float median_queued_ms(int calls, int sets, Call call) {
  for (int i = 0; i < 10; ++i) call(i % sets);
  CHECK_CUDA(cudaDeviceSynchronize());
  std::vector<cudaEvent_t> starts(calls), ends(calls);
  for (int i = 0; i < calls; ++i) {
    CHECK_CUDA(cudaEventCreate(&starts[i]));
    CHECK_CUDA(cudaEventCreate(&ends[i]));
  }
  for (int i = 0; i < calls; ++i) {
    CHECK_CUDA(cudaEventRecord(starts[i]));
    call(i % sets);
    CHECK_CUDA(cudaEventRecord(ends[i]));
  }
  CHECK_CUDA(cudaDeviceSynchronize());
  std::vector<float> ms(calls);
  for (int i = 0; i < calls; ++i) {
    CHECK_CUDA(cudaEventElapsedTime(&ms[i], starts[i], ends[i]));
    cudaEventDestroy(starts[i]);
    cudaEventDestroy(ends[i]);
  }
  std::nth_element(ms.begin(), ms.begin() + calls / 2, ms.end());
  return ms[calls / 2];
}

struct Meta {
  int *spatial_shape, *start;
  explicit Meta(const Problem& p) {
    const HostMetadata host(p);
    spatial_shape = to_device(host.spatial_shape);
    start = to_device(host.start);
  }
  MsdaMeta meta() const { return MsdaMeta{spatial_shape, start, false}; }
};

constexpr int kInputSets = 2;

template <typename T>
void time_forward(const char* dtype, const Problem& p) {
  Random random;
  std::vector<HostInputs<T>> host;
  std::vector<DeviceInputs> device;
  for (int s = 0; s < kInputSets; ++s) {
    host.push_back(make_inputs<T>(p, random));
    device.push_back(
        {to_device(host[s].features), to_device(host[s].location), to_device(host[s].weights)});
  }
  const Meta meta(p);
  const MsdaShape shape = p.shape();
  T* output = nullptr;
  CHECK_CUDA(cudaMalloc(&output, p.output_count() * sizeof(T)));
  CHECK_CUDA(cudaMemset(output, 0xff, p.output_count() * sizeof(T)));  // NaN-poisoned
  auto call = [&](int s) {
    CHECK_CUDA(mmsparse4d::cuda::launch_msda_forward(scalar_type<T>(), shape, meta.meta(),
                                                     device[s].features, device[s].location,
                                                     device[s].weights, output, nullptr));
  };
  call(0);
  std::vector<T> result(p.output_count());
  CHECK_CUDA(cudaMemcpy(result.data(), output, result.size() * sizeof(T), cudaMemcpyDeviceToHost));
  const std::vector<double> expected = reference_forward(p, host[0]);
  double error = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const double value = to_double(result[i]);
    error = std::isfinite(value) ? std::max(error, std::fabs(value - expected[i])) : INFINITY;
  }
  const float ms = median_queued_ms(200, kInputSets, call);
  std::printf(
      "| forward | %s | B=%d, %d cameras, A=%d, C=%d, G=%d | vector %d | %.4f ms | "
      "max error %.2e |\n",
      dtype, p.batch, p.cams, p.anchors, p.channels, p.groups,
      mmsparse4d::cuda::msda_vector_width(scalar_type<T>(), p.channels, p.groups,
                                          device[0].features),
      ms, error);
}

template <typename T>
__global__ void cast_from_float(const float* in, T* out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    out[i] = T(in[i]);
  }
}

__global__ void sum_abs(const float* in, int64_t n, double* out) {
  double sum = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    sum += std::fabs(static_cast<double>(in[i]));
  }
  atomicAdd(out, sum);
}

double device_sum_abs(const float* values, size_t n) {
  double* sum = nullptr;
  CHECK_CUDA(cudaMalloc(&sum, sizeof(double)));
  CHECK_CUDA(cudaMemset(sum, 0, sizeof(double)));
  sum_abs<<<264, 256>>>(values, static_cast<int64_t>(n), sum);
  double host = 0;
  CHECK_CUDA(cudaMemcpy(&host, sum, sizeof(double), cudaMemcpyDeviceToHost));
  cudaFree(sum);
  return host;
}

// The atomic backward into fp32 buffers (the default of fp32, and of bf16 at C = 96).
template <typename T>
void time_backward(const char* dtype, const Problem& p) {
  Random random;
  const HostInputs<T> host = make_inputs<T>(p, random);
  std::vector<T> grad_output_host(p.output_count());
  for (auto& v : grad_output_host) v = from_double<T>(random.uniform() * 2 - 1);
  const DeviceInputs in{to_device(host.features), to_device(host.location),
                        to_device(host.weights)};
  T* grad_output = to_device(grad_output_host);
  const Meta meta(p);
  const MsdaShape shape = p.shape();
  float *grad_features, *grad_location, *grad_weights;
  CHECK_CUDA(cudaMalloc(&grad_features, p.feature_count() * sizeof(float)));
  CHECK_CUDA(cudaMalloc(&grad_location, 2 * p.sample_count() * sizeof(float)));
  CHECK_CUDA(cudaMalloc(&grad_weights, p.weight_count() * sizeof(float)));
  T* grad_features_cast = nullptr;
  CHECK_CUDA(cudaMalloc(&grad_features_cast, p.feature_count() * sizeof(T)));
  auto call = [&](int) {
    CHECK_CUDA(cudaMemsetAsync(grad_features, 0, p.feature_count() * sizeof(float)));
    CHECK_CUDA(cudaMemsetAsync(grad_location, 0, 2 * p.sample_count() * sizeof(float)));
    CHECK_CUDA(cudaMemsetAsync(grad_weights, 0, p.weight_count() * sizeof(float)));
    CHECK_CUDA(mmsparse4d::cuda::launch_msda_backward(
        scalar_type<T>(), shape, meta.meta(), grad_output, in.features, in.location, in.weights,
        grad_features, grad_location, grad_weights, false, nullptr));
    if (sizeof(T) == 2) {
      cast_from_float<T><<<1056, 512>>>(grad_features, grad_features_cast,
                                        static_cast<int64_t>(p.feature_count()));
    }
  };
  const float ms = median_queued_ms(50, 1, call);
  call(0);
  std::printf(
      "| backward | %s | B=%d, %d cameras, A=%d, C=%d, G=%d | vector %d | %.4f ms | "
      "sum |grad|: features %.6e, location %.6e, weights %.6e |\n",
      dtype, p.batch, p.cams, p.anchors, p.channels, p.groups,
      mmsparse4d::cuda::msda_vector_width(scalar_type<T>(), p.channels, p.groups, in.features), ms,
      device_sum_abs(grad_features, p.feature_count()),
      device_sum_abs(grad_location, 2 * p.sample_count()),
      device_sum_abs(grad_weights, p.weight_count()));
}

// Calls run.template operator()<T>() for the dtype named; false for an unknown name.
template <typename Run>
bool for_dtype(const char* dtype, Run run) {
  if (!std::strcmp(dtype, "fp32")) return run.template operator()<float>(), true;
  if (!std::strcmp(dtype, "fp16")) return run.template operator()<__half>(), true;
  if (!std::strcmp(dtype, "bf16")) return run.template operator()<__nv_bfloat16>(), true;
  return false;
}

// One line naming what is wrong, then the usage; exit status 2.
int usage(const char* what) {
  std::fprintf(stderr,
               "msda_kernel_timing: %s\n"
               "usage: msda_kernel_timing forward fp32|fp16|bf16 [CAMS | small]\n"
               "       msda_kernel_timing backward fp32|fp16|bf16 [BATCH [C [G]]]\n",
               what);
  return 2;
}

// The small configs' training step: 6 cameras at 480x272, 300 anchors + denoising.
Problem small_step(int batch, int channels, int groups) {
  return Problem{batch, 6, 4, 400, 13, groups, channels, {68, 34, 17, 9}, {120, 60, 30, 15}};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage("a direction and a dtype are needed");
  const char* dtype = argv[2];
  if (!std::strcmp(argv[1], "forward")) {
    // One sample of the 960x544 configs (strides 4/8/16/32), or the small configs' step.
    const bool small = argc > 3 && !std::strcmp(argv[3], "small");
    const int cams = argc > 3 && !small ? std::atoi(argv[3]) : 10;
    if (cams < 1) return usage("CAMS must be >= 1 (or 'small')");
    const Problem p =
        small ? small_step(16, 96, 4)
              : Problem{1, cams, 4, 900, 13, 8, 256, {136, 68, 34, 17}, {240, 120, 60, 30}};
    return for_dtype(dtype, [&]<typename T>() { time_forward<T>(dtype, p); })
               ? 0
               : usage("unknown dtype");
  }
  if (!std::strcmp(argv[1], "backward")) {
    // The small configs' training step: 6 cameras at 480x272, 300 anchors + denoising.
    const int batch = argc > 3 ? std::atoi(argv[3]) : 16;
    const int channels = argc > 4 ? std::atoi(argv[4]) : 96;
    const int groups = argc > 5 ? std::atoi(argv[5]) : 4;
    if (batch < 1 || channels < 1 || groups < 1 || channels % groups) {
      return usage("BATCH, C and G must be >= 1 and G must divide C");
    }
    const Problem p = small_step(batch, channels, groups);
    return for_dtype(dtype, [&]<typename T>() { time_backward<T>(dtype, p); })
               ? 0
               : usage("unknown dtype");
  }
  return usage("the direction must be forward or backward");
}
