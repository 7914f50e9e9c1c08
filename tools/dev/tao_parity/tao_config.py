"""TAO's Sparse4D config as plain dicts with the TAO spec's values (tao-core's dataclasses
are not needed)."""

from __future__ import annotations

from .settings import CLASSES, EMBED_DIMS


class _Cfg(dict):
    """dict with attribute access for the top level (Sparse4D reads ``config.model``)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(name) from e


def _operation_order(num_decoder: int) -> list[str]:
    first = ['deformable', 'ffn', 'norm', 'refine']
    rest = ['temp_gnn', 'gnn', 'norm', 'deformable', 'ffn', 'norm', 'refine']
    return first + rest * (num_decoder - 1)


def tao_config(
    *,
    anchor,
    num_anchor: int,
    num_temp_instances: int,
    num_decoder: int,
    num_single_frame_decoder: int,
    num_output: int,
    max_num_cams: int,
    use_camera_embed: bool,
    use_deformable_func: bool,
    backbone: str = 'resnet_101',
) -> dict:
    """The TAO experiment spec's model section (plus tao-core defaults it leaves out)."""
    e = EMBED_DIMS
    head = {
        'type': 'sparse4d',
        'num_output': num_output,
        'cls_threshold_to_reg': 0.05,
        'decouple_attn': True,
        'return_feature': True,
        'use_reid_sampling': False,
        'embed_dims': e,
        'reid_dims': 0,
        'num_groups': 8,
        'num_decoder': num_decoder,
        'num_single_frame_decoder': num_single_frame_decoder,
        'drop_out': 0.1,
        'temporal': True,
        'with_quality_estimation': True,
        'valid_vel_weight': -1,
        'instance_bank': {
            'num_anchor': num_anchor,
            'anchor': anchor,
            'num_temp_instances': num_temp_instances,
            'confidence_decay': 0.8,
            'feat_grad': False,
            'default_time_interval': 0.033333,
            'embed_dims': e,
            'use_temporal_align': True,
        },
        'anchor_encoder': {
            'type': 'SparseBox3DEncoder',
            'vel_dims': 3,
            'embed_dims': [128, 32, 32, 64],
            'mode': 'cat',
            'output_fc': False,
            'in_loops': 1,
            'out_loops': 4,
            'pos_embed_only': False,
        },
        'operation_order': _operation_order(num_decoder),
        'temp_graph_model': {
            'type': 'MultiheadAttention',
            'embed_dims': 2 * e,
            'num_heads': 8,
            'batch_first': True,
            'dropout': 0.1,
        },
        'graph_model': {
            'type': 'MultiheadAttention',
            'embed_dims': 2 * e,
            'num_heads': 8,
            'batch_first': True,
            'dropout': 0.1,
        },
        'norm_layer': {'type': 'LN', 'normalized_shape': e},
        'ffn': {
            'type': 'AsymmetricFFN',
            'in_channels': 2 * e,
            'pre_norm': {'type': 'LN'},
            'embed_dims': e,
            'feedforward_channels': 1024,
            'num_fcs': 2,
            'ffn_drop': 0.1,
            'act_cfg': {'type': 'ReLU', 'inplace': True},
        },
        'deformable_model': {
            'embed_dims': e,
            'num_groups': 8,
            'num_levels': 4,
            'num_cams': 6,
            'max_num_cams': max_num_cams,
            'proj_drop': 0.0,
            'attn_drop': 0.15,
            'use_deformable_func': use_deformable_func,
            'use_camera_embed': use_camera_embed,
            'residual_mode': 'cat',
            'kps_generator': {
                'embed_dims': e,
                'num_learnable_pts': 6,
                'fix_scale': [
                    [0, 0, 0],
                    [0.45, 0, 0],
                    [-0.45, 0, 0],
                    [0, 0.45, 0],
                    [0, -0.45, 0],
                    [0, 0, 0.45],
                    [0, 0, -0.45],
                ],
            },
        },
        'refine_layer': {
            'type': 'SparseBox3DRefinementModule',
            'embed_dims': e,
            'refine_yaw': True,
            'with_quality_estimation': True,
        },
        'sampler': {
            'num_dn_groups': 5,
            'num_temp_dn_groups': 3,
            'dn_noise_scale': [2.0, 2.0, 2.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5],
            'max_dn_gt': 128,
            'add_neg_dn': True,
            'cls_weight': 2.0,
            'box_weight': 0.25,
            'reg_weights': [2.0, 2.0, 2.0, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0],
            'use_temporal_align': True,
            'gt_assign_threshold': 0.5,
        },
        'visibility_net': {'type': 'visibility_net', 'embedding_dim': 256, 'hidden_channels': 32},
        'bnneck': {'type': 'bnneck', 'feat_dim': 256, 'num_ids': 70},
        'loss': {
            'reg': {'type': 'sparse_box_3d', 'box_weight': 0.25, 'cls_allow_reverse': [5, 6, 7]},
            'cls': {
                'type': 'focal',
                'use_sigmoid': True,
                'gamma': 2.0,
                'alpha': 0.25,
                'loss_weight': 2.0,
            },
            'id': {'type': 'cross_entropy_label_smooth', 'num_ids': 70},
        },
        'decoder': {'type': 'SparseBox3DDecoder', 'score_threshold': 0.05},
        'reg_weights': [2.0, 2.0, 2.0, 1, 1, 1, 1, 1, 1, 1, 1],
    }
    model = {
        'type': 'sparse4d',
        'use_grid_mask': True,
        'use_deformable_func': use_deformable_func,
        'use_temporal_align': True,
        'input_shape': [1408, 512],
        'embed_dims': e,
        'backbone': {'type': backbone},
        'neck': {
            'type': 'FPN',
            'num_outs': 4,
            'start_level': 0,
            'out_channels': 256,
            'in_channels': [256, 512, 1024, 2048],
            'add_extra_convs': 'on_output',
            'relu_before_extra_convs': True,
        },
        'depth_branch': {
            'type': 'dense_depth',
            'embed_dims': e,
            'num_depth_layers': 3,
            'loss_weight': 0.2,
        },
        'head': head,
    }
    return _Cfg(model=model, dataset={'classes': list(CLASSES), 'num_ids': 70})
