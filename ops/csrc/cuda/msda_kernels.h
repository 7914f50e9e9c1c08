// CUDA kernels of the MSDA operator, behind a plain launcher interface so the same code
// serves the torch operator, the ONNX Runtime custom op and the TensorRT plugin.
//
// Work decomposition (forward and backward): one thread block per (batch, anchor).
// The block is a 2-D grid of warps: `channel_warps` warps side by side cover the C
// channels, each lane owning VEC consecutive channels (one 16-byte load per corner), and
// `sample_warps` rows of warps split the anchor's (point, camera) samples between them.
// Each warp stages the bilinear corners of 32 (sample, level) entries at a time in shared
// memory (one entry per lane), then all lanes consume them. The forward sums the rows
// of warps in shared memory, so it needs no atomics and is deterministic.
// Plain C++ header (no device code): included by host-compiled glue of every back end.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace mmsparse4d {
namespace cuda {

enum class ScalarType { kFloat32, kFloat16, kBFloat16, kFloat64 };

struct MsdaShape {
  int64_t batch, pixels, channels, cams, levels, anchors, points, groups;
};

// Metadata tensors are int32 or int64, on the device.
struct MsdaMeta {
  const void* spatial_shape;      // [N, L, 2]
  const void* scale_start_index;  // [N, L]
  bool meta_is_int64;
};

// Launch the forward on `stream`. Returns the launch's cudaError_t.
cudaError_t launch_msda_forward(ScalarType dtype, const MsdaShape& shape, const MsdaMeta& meta,
                                const void* features, const void* sampling_location,
                                const void* weights, void* output, cudaStream_t stream);

// Launch the backward on `stream`. The three gradient buffers must be zero-filled by the
// caller and are accumulated in `accumulate` precision (float, or double for float64
// inputs): grad_features_acc [B, F, C], grad_location_acc [B, A, P, N, 2],
// grad_weights_acc [B, A, P, N, L, G]. With `half_features_in_own_format` and a 2-byte
// dtype, grad_features_acc is in that dtype instead and every addition rounds to it (no
// fp32 buffer to clear and cast: the half backward's reduced-precision mode). Every buffer
// must be aligned to 16 bytes (the vector reductions), as a fresh allocation is.
cudaError_t launch_msda_backward(ScalarType dtype, const MsdaShape& shape, const MsdaMeta& meta,
                                 const void* grad_output, const void* features,
                                 const void* sampling_location, const void* weights,
                                 void* grad_features_acc, void* grad_location_acc,
                                 void* grad_weights_acc, bool half_features_in_own_format,
                                 cudaStream_t stream);

// Channels per lane (one vector load) the kernels use for this dtype, shape and the
// alignment of `features` (for tests and benchmarks).
int msda_vector_width(ScalarType dtype, int64_t channels, int64_t groups, const void* features);

// The most channels one thread block covers; the launchers return
// cudaErrorInvalidConfiguration above it.
int64_t msda_max_channels(ScalarType dtype, int64_t channels, int64_t groups, const void* features);

}  // namespace cuda
}  // namespace mmsparse4d
