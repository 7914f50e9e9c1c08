// TensorRT IPluginV3 for `nv::MSDA` (the node of our ONNX export and NVIDIA's deploy stack),
// running the same CUDA kernels as the torch operator (../csrc/cuda/msda_kernels.cu).
//
// Inputs: features [B, F, C] (fp32 or fp16), spatial_shape [N, L, 2] and
// scale_start_index [N, L] (int32 or int64, one type for both), sampling_location
// [B, A, P, N, 2] and weights [B, A, P, N, L, G] (the type of features). Output [B, A, C].
#pragma once

#include <NvInferRuntime.h>

#include <string>

namespace mmsparse4d {
namespace tensorrt {

constexpr char const* kPluginName = "MSDA";
constexpr char const* kPluginVersion = "1";

class MsdaPlugin : public nvinfer1::IPluginV3,
                   public nvinfer1::IPluginV3OneCore,
                   public nvinfer1::IPluginV3OneBuild,
                   public nvinfer1::IPluginV3OneRuntime {
 public:
  explicit MsdaPlugin(std::string plugin_namespace);

  // IPluginV3
  nvinfer1::IPluginCapability* getCapabilityInterface(
      nvinfer1::PluginCapabilityType type) noexcept override;
  nvinfer1::IPluginV3* clone() noexcept override;

  // IPluginV3OneCore
  char const* getPluginName() const noexcept override { return kPluginName; }
  char const* getPluginVersion() const noexcept override { return kPluginVersion; }
  char const* getPluginNamespace() const noexcept override { return namespace_.c_str(); }

  // IPluginV3OneBuild
  int32_t configurePlugin(nvinfer1::DynamicPluginTensorDesc const* in, int32_t nb_inputs,
                          nvinfer1::DynamicPluginTensorDesc const* out,
                          int32_t nb_outputs) noexcept override;
  int32_t getOutputDataTypes(nvinfer1::DataType* output_types, int32_t nb_outputs,
                             nvinfer1::DataType const* input_types,
                             int32_t nb_inputs) const noexcept override;
  int32_t getOutputShapes(nvinfer1::DimsExprs const* inputs, int32_t nb_inputs,
                          nvinfer1::DimsExprs const* shape_inputs, int32_t nb_shape_inputs,
                          nvinfer1::DimsExprs* outputs, int32_t nb_outputs,
                          nvinfer1::IExprBuilder& builder) noexcept override;
  bool supportsFormatCombination(int32_t pos, nvinfer1::DynamicPluginTensorDesc const* in_out,
                                 int32_t nb_inputs, int32_t nb_outputs) noexcept override;
  int32_t getNbOutputs() const noexcept override { return 1; }

  // IPluginV3OneRuntime
  int32_t onShapeChange(nvinfer1::PluginTensorDesc const* in, int32_t nb_inputs,
                        nvinfer1::PluginTensorDesc const* out,
                        int32_t nb_outputs) noexcept override;
  int32_t enqueue(nvinfer1::PluginTensorDesc const* input_desc,
                  nvinfer1::PluginTensorDesc const* output_desc, void const* const* inputs,
                  void* const* outputs, void* workspace, cudaStream_t stream) noexcept override;
  nvinfer1::IPluginV3* attachToContext(nvinfer1::IPluginResourceContext* context) noexcept override;
  nvinfer1::PluginFieldCollection const* getFieldsToSerialize() noexcept override;

 private:
  std::string namespace_;
  nvinfer1::PluginFieldCollection no_fields_{};
};

class MsdaPluginCreator : public nvinfer1::IPluginCreatorV3One {
 public:
  nvinfer1::IPluginV3* createPlugin(char const* name, nvinfer1::PluginFieldCollection const* fc,
                                    nvinfer1::TensorRTPhase phase) noexcept override;
  nvinfer1::PluginFieldCollection const* getFieldNames() noexcept override { return &no_fields_; }
  char const* getPluginName() const noexcept override { return kPluginName; }
  char const* getPluginVersion() const noexcept override { return kPluginVersion; }
  char const* getPluginNamespace() const noexcept override { return namespace_.c_str(); }

 private:
  std::string namespace_;
  nvinfer1::PluginFieldCollection no_fields_{};
};

}  // namespace tensorrt
}  // namespace mmsparse4d
