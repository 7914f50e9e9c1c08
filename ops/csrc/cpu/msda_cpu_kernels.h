// CPU kernels of the MSDA operator, free of torch so that the torch operator and the
// ONNX Runtime custom op share them.
//
// Forward: one task per (batch, anchor) owns its C output channels and walks points,
// cameras and levels; the channel loop is contiguous so the compiler vectorises it.
// Backward: one task per (batch, weight group) owns that group's channels of
// grad_features, so the scatter into grad_features needs no atomics and the result is
// deterministic; location gradients are summed over groups afterwards.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace mmsparse4d {
namespace cpu {

struct Geometry {
  int64_t batch, pixels, channels, cams, levels, anchors, points, groups;
  std::vector<int64_t> heights, widths, starts;  // per (camera, level)
};

// Reads the (H, W) and start row of every (camera, level) from the metadata (int32 or
// int64) and checks them against the packed features. Returns an error message naming
// the argument, or an empty string.
template <typename index_t>
std::string read_level_blocks(Geometry& geo, const index_t* spatial_shape,
                              const index_t* scale_start_index) {
  const int64_t blocks = geo.cams * geo.levels;
  geo.heights.resize(blocks);
  geo.widths.resize(blocks);
  geo.starts.resize(blocks);
  for (int64_t i = 0; i < blocks; ++i) {
    geo.heights[i] = static_cast<int64_t>(spatial_shape[2 * i]);
    geo.widths[i] = static_cast<int64_t>(spatial_shape[2 * i + 1]);
    geo.starts[i] = static_cast<int64_t>(scale_start_index[i]);
    const std::string where =
        "camera " + std::to_string(i / geo.levels) + ", level " + std::to_string(i % geo.levels);
    if (geo.heights[i] <= 0 || geo.widths[i] <= 0) {
      return "argument 'spatial_shape' holds a non-positive size " +
             std::to_string(geo.heights[i]) + "x" + std::to_string(geo.widths[i]) + " at " + where;
    }
    // Bounded by the rows before multiplying or adding: no int64 overflow on any input.
    const int64_t h = geo.heights[i], w = geo.widths[i], start = geo.starts[i];
    if (h > geo.pixels / w) {
      return "argument 'spatial_shape' holds " + std::to_string(h) + "x" + std::to_string(w) +
             " at " + where + ": more pixels than 'features' has rows (" +
             std::to_string(geo.pixels) + ")";
    }
    if (start < 0 || start > geo.pixels - h * w) {
      return "argument 'scale_start_index' places " + where + " (" + std::to_string(h) + "x" +
             std::to_string(w) + ") from row " + std::to_string(start) + ", outside 'features' (" +
             std::to_string(geo.pixels) + " rows)";
    }
  }
  return {};
}

// The four bilinear corners of one sample: pixel index inside the level (or -1 when the
// corner lies outside the map) and interpolation weight.
template <typename acc_t>
struct BilinearCorners {
  int64_t pixel[4];
  acc_t weight[4];
  acc_t frac_h, frac_w;  // fractional position inside the cell, for the gradients
};

// x, y normalised in (0, 1); pixel-centre convention (align_corners=False).
template <typename acc_t>
inline BilinearCorners<acc_t> bilinear_corners(acc_t x, acc_t y, int64_t height, int64_t width) {
  const acc_t h_im = y * static_cast<acc_t>(height) - acc_t(0.5);
  const acc_t w_im = x * static_cast<acc_t>(width) - acc_t(0.5);
  const acc_t h_floor = std::floor(h_im);
  const acc_t w_floor = std::floor(w_im);
  const int64_t h_low = static_cast<int64_t>(h_floor);
  const int64_t w_low = static_cast<int64_t>(w_floor);
  const acc_t lh = h_im - h_floor, lw = w_im - w_floor;
  const acc_t hh = acc_t(1) - lh, hw = acc_t(1) - lw;
  BilinearCorners<acc_t> corners;
  const int64_t hs[4] = {h_low, h_low, h_low + 1, h_low + 1};
  const int64_t ws[4] = {w_low, w_low + 1, w_low, w_low + 1};
  const acc_t weights[4] = {hh * hw, hh * lw, lh * hw, lh * lw};
  for (int k = 0; k < 4; ++k) {
    const bool inside = hs[k] >= 0 && hs[k] < height && ws[k] >= 0 && ws[k] < width;
    corners.pixel[k] = inside ? hs[k] * width + ws[k] : -1;
    corners.weight[k] = weights[k];
  }
  corners.frac_h = lh;
  corners.frac_w = lw;
  return corners;
}

template <typename acc_t>
inline bool strictly_inside(acc_t x, acc_t y) {
  // Written so that NaN fails every comparison and is rejected.
  return x > acc_t(0) && x < acc_t(1) && y > acc_t(0) && y < acc_t(1);
}

// output [B, A, C] = the MSDA of DESIGN.md §5. ParallelFor(begin, end, grain, fn) runs
// fn(chunk_begin, chunk_end) over [begin, end) in parallel chunks.
template <typename scalar_t, typename acc_t, typename ParallelFor>
void forward(const Geometry& geo, const scalar_t* features, const scalar_t* locations,
             const scalar_t* weights, scalar_t* output, ParallelFor&& parallel_for) {
  const int64_t C = geo.channels, G = geo.groups, per_group = C / G;
  const int64_t work_per_anchor = geo.points * geo.cams * geo.levels * 4 * C;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, work_per_anchor));
  parallel_for(int64_t(0), geo.batch * geo.anchors, grain, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> acc(C);
    for (int64_t ba = begin; ba < end; ++ba) {
      const int64_t b = ba / geo.anchors;
      const scalar_t* feat_b = features + b * geo.pixels * C;
      std::fill(acc.begin(), acc.end(), acc_t(0));
      for (int64_t p = 0; p < geo.points; ++p) {
        for (int64_t n = 0; n < geo.cams; ++n) {
          const int64_t sample = (ba * geo.points + p) * geo.cams + n;
          const acc_t x = static_cast<acc_t>(locations[2 * sample]);
          const acc_t y = static_cast<acc_t>(locations[2 * sample + 1]);
          if (!strictly_inside(x, y)) continue;
          for (int64_t l = 0; l < geo.levels; ++l) {
            const int64_t block = n * geo.levels + l;
            const auto corners =
                bilinear_corners<acc_t>(x, y, geo.heights[block], geo.widths[block]);
            const scalar_t* level = feat_b + geo.starts[block] * C;
            const scalar_t* w = weights + (sample * geo.levels + l) * G;
            for (int64_t g = 0; g < G; ++g) {
              const acc_t wg = static_cast<acc_t>(w[g]);
              acc_t* acc_g = acc.data() + g * per_group;
              for (int k = 0; k < 4; ++k) {
                if (corners.pixel[k] < 0) continue;
                const acc_t coef = wg * corners.weight[k];
                const scalar_t* value = level + corners.pixel[k] * C + g * per_group;
                for (int64_t c = 0; c < per_group; ++c) {
                  acc_g[c] += coef * static_cast<acc_t>(value[c]);
                }
              }
            }
          }
        }
      }
      scalar_t* out = output + ba * C;
      for (int64_t c = 0; c < C; ++c) out[c] = static_cast<scalar_t>(acc[c]);
    }
  });
}

// Gradients in acc_t, zero-filled by the caller: grad_features [B, F, C],
// grad_location_per_group [G, B, A, P, N, 2] (sum it over G), grad_weights [B, A, P, N, L, G].
template <typename scalar_t, typename acc_t, typename ParallelFor>
void backward(const Geometry& geo, const scalar_t* grad_output, const scalar_t* features,
              const scalar_t* locations, const scalar_t* weights, acc_t* grad_features,
              acc_t* grad_location_per_group, acc_t* grad_weights, ParallelFor&& parallel_for) {
  const int64_t C = geo.channels, G = geo.groups, per_group = C / G;
  const int64_t location_numel = geo.batch * geo.anchors * geo.points * geo.cams * 2;
  parallel_for(int64_t(0), geo.batch * G, int64_t(1), [&](int64_t begin, int64_t end) {
    for (int64_t bg = begin; bg < end; ++bg) {
      const int64_t b = bg / G, g = bg % G;
      const scalar_t* feat_b = features + b * geo.pixels * C + g * per_group;
      acc_t* grad_feat_b = grad_features + b * geo.pixels * C + g * per_group;
      acc_t* grad_loc_g = grad_location_per_group + g * location_numel;
      for (int64_t a = 0; a < geo.anchors; ++a) {
        const int64_t ba = b * geo.anchors + a;
        const scalar_t* go = grad_output + ba * C + g * per_group;
        for (int64_t p = 0; p < geo.points; ++p) {
          for (int64_t n = 0; n < geo.cams; ++n) {
            const int64_t sample = (ba * geo.points + p) * geo.cams + n;
            const acc_t x = static_cast<acc_t>(locations[2 * sample]);
            const acc_t y = static_cast<acc_t>(locations[2 * sample + 1]);
            if (!strictly_inside(x, y)) continue;
            acc_t grad_x = 0, grad_y = 0;
            for (int64_t l = 0; l < geo.levels; ++l) {
              const int64_t block = n * geo.levels + l;
              const int64_t height = geo.heights[block], width = geo.widths[block];
              const auto corners = bilinear_corners<acc_t>(x, y, height, width);
              const int64_t w_index = (sample * geo.levels + l) * G + g;
              const acc_t wg = static_cast<acc_t>(weights[w_index]);
              const scalar_t* level = feat_b + geo.starts[block] * C;
              acc_t* grad_level = grad_feat_b + geo.starts[block] * C;
              const acc_t lh = corners.frac_h, lw = corners.frac_w;
              const acc_t hh = acc_t(1) - lh, hw = acc_t(1) - lw;
              acc_t grad_w = 0, grad_lw = 0, grad_lh = 0;
              for (int64_t c = 0; c < per_group; ++c) {
                const acc_t go_c = static_cast<acc_t>(go[c]);
                acc_t v[4];
                for (int k = 0; k < 4; ++k) {
                  v[k] = corners.pixel[k] < 0 ? acc_t(0)
                                              : static_cast<acc_t>(level[corners.pixel[k] * C + c]);
                }
                const acc_t value = corners.weight[0] * v[0] + corners.weight[1] * v[1] +
                                    corners.weight[2] * v[2] + corners.weight[3] * v[3];
                grad_w += go_c * value;
                grad_lw += go_c * (hh * (v[1] - v[0]) + lh * (v[3] - v[2]));
                grad_lh += go_c * (hw * (v[2] - v[0]) + lw * (v[3] - v[1]));
              }
              for (int k = 0; k < 4; ++k) {
                if (corners.pixel[k] < 0) continue;
                const acc_t coef = wg * corners.weight[k];
                acc_t* dst = grad_level + corners.pixel[k] * C;
                for (int64_t c = 0; c < per_group; ++c) {
                  dst[c] += coef * static_cast<acc_t>(go[c]);
                }
              }
              grad_weights[w_index] = grad_w;
              // d(w_im)/dx = W and d(h_im)/dy = H.
              grad_x += wg * grad_lw * static_cast<acc_t>(width);
              grad_y += wg * grad_lh * static_cast<acc_t>(height);
            }
            grad_loc_g[2 * sample] += grad_x;
            grad_loc_g[2 * sample + 1] += grad_y;
          }
        }
      }
    }
  });
}

}  // namespace cpu
}  // namespace mmsparse4d
