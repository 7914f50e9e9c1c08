"""The names the deployment tools accept on their command lines, importable without torch
or the model, so that a tool checks its arguments before it imports either."""

# The back ends of the tracking frame (mmsparse4d.deploy.backends).
BACKENDS = ('pytorch', 'cudagraph', 'onnxruntime', 'tensorrt')
# The precisions a frame runs in (mmsparse4d.deploy.cuda_graph.PRECISIONS: their dtypes).
PRECISION_NAMES = ('fp32', 'fp16', 'bf16')
# torch.compile modes the frame benchmark and the tracker take (cuda_graph.compile_forward):
# none with CUDA graphs of its own, which would nest in a captured frame.
COMPILE_MODES = ('default', 'max-autotune-no-cudagraphs')
# The exported graph's contracts (mmsparse4d.deploy.export): ours, the default
# (graph_io), and NVIDIA TAO's deployable_v2.2 (tao_contract).
OUR_CONTRACT = 'mmsparse4d'
TAO_CONTRACT = 'tao-v2.2'
CONTRACTS = (OUR_CONTRACT, TAO_CONTRACT)
