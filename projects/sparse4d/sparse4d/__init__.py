"""The outside-in warehouse adaptation of Sparse4D (NVIDIA's "Sparse4D w/ OAE").

Loaded by its configs with ``custom_imports=dict(imports=['projects.sparse4d.sparse4d'])``
and registering only names the core does not have. Its modules (camera embedding,
visibility net, occlusion-aware embedding, BNNeck, ID and visibility losses) arrive with
the [model] issue.
"""
