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

// Launch the forward on `stream`. Returns the launch's cudaError_t: cudaErrorInvalidValue
// for a shape without channels or groups, G not dividing C, or more than 2^31 - 1 pixels a
// sample (the backward alike); cudaErrorInvalidConfiguration for more channels than
// msda_max_channels or a shape that msda_forward_fits refuses. Sums in fp32 (fp64 for
// float64); fp16 first blends each entry's four bilinear corners in half2 (MSDA_HALF_BLEND in
// msda_kernels.cu).
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

// The feature gradient by destination, for a backward launched with grad_features_acc ==
// nullptr (which then computes the location and weight gradients only). The steps, on
// `stream`, with the caller's prefix sums (inclusive, int32) between them:
//   1. launch_msda_count_corners: counts [B * F] int32, zero-filled, += corners per row;
//      the caller sets ends = cumsum(counts) and cursors = ends - counts (each row's first
//      slot; the fill advances them);
//   2. launch_msda_list_corners: keys [4 * msda_entries] int32, each row's corner keys
//      written from its cursor on;
//   3. launch_msda_count_pieces: pieces [2, B * F] int32, every row's pieces of at most a
//      fixed number of corners (at least one), and the same for rows of several, else 0;
//      the caller sets piece_ends = cumsum(pieces[0]) and partial_ends = cumsum(pieces[1])
//      (two 1-D scans: a scan along the last dim of [2, B * F] runs on two thread blocks);
//   4. launch_msda_piece_rows: piece_row [msda_max_pieces] int32, each piece's row;
//   5. launch_msda_feature_gradient: grad_features [B, F, C] in the input's dtype, every row
//      written (zeros where nothing samples it), sums in the accumulation type;
//      partials [msda_max_partials, C] in the accumulation type, uninitialised (vectors
//      narrow unless it is aligned to 32 bytes). Worst-case sizes: keys 16 bytes and
//      partials 64 x C / 128 x (4 or 8) bytes per entry.
// Only for shapes where msda_feature_gradient_by_destination_fits.
struct FeatureGradientLists {
  const int* counts;
  const int* ends;
  const int* keys;
  const int* pieces;
  const int* piece_ends;
  const int* partial_ends;
  const int* piece_row;
};
bool msda_feature_gradient_by_destination_fits(const MsdaShape& shape);
int64_t msda_entries(const MsdaShape& shape);  // B * A * P * N * L
int64_t msda_max_pieces(const MsdaShape& shape);
int64_t msda_max_partials(const MsdaShape& shape);
cudaError_t launch_msda_count_corners(ScalarType dtype, const MsdaShape& shape,
                                      const MsdaMeta& meta, const void* sampling_location,
                                      int* counts, cudaStream_t stream);
cudaError_t launch_msda_list_corners(ScalarType dtype, const MsdaShape& shape, const MsdaMeta& meta,
                                     const void* sampling_location, int* cursors, int* keys,
                                     cudaStream_t stream);
cudaError_t launch_msda_count_pieces(const MsdaShape& shape, const int* counts, int* pieces,
                                     cudaStream_t stream);
cudaError_t launch_msda_piece_rows(const MsdaShape& shape, const int* pieces, const int* piece_ends,
                                   int* piece_row, cudaStream_t stream);
cudaError_t launch_msda_feature_gradient(ScalarType dtype, const MsdaShape& shape,
                                         const MsdaMeta& meta, const FeatureGradientLists& lists,
                                         const void* grad_output, const void* sampling_location,
                                         const void* weights, void* partials, void* grad_features,
                                         cudaStream_t stream);

// Channels per lane (one vector load) the kernels use for this dtype, shape and the
// alignment of `features` (for tests and benchmarks).
int msda_vector_width(ScalarType dtype, int64_t channels, int64_t groups, const void* features);

// Whether one sample's features (pixels x channels elements) fit the forward's 32-bit
// offsets: at most 2^32 - 1 elements.
bool msda_forward_fits(const MsdaShape& shape);

// The most channels one thread block covers; the launchers return
// cudaErrorInvalidConfiguration above it.
int64_t msda_max_channels(ScalarType dtype, int64_t channels, int64_t groups, const void* features);

}  // namespace cuda
}  // namespace mmsparse4d
