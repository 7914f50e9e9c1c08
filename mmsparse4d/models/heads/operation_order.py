"""The operations of a Sparse4D head's decoder stack and their order."""

OPERATIONS = ('temp_gnn', 'gnn', 'norm', 'ffn', 'deformable', 'refine')


def default_operation_order(num_decoder: int, num_single_frame_decoder: int) -> list[str]:
    """Sparse4D v3's order: the first decoder has no attention (deformable, ffn, norm,
    refine), single-frame decoders add self-attention, temporal ones add the temporal
    cross-attention: 39 operations for 6 decoders with 1 single-frame decoder."""
    single = ['gnn', 'norm', 'deformable', 'ffn', 'norm', 'refine']
    temporal = ['temp_gnn', *single]
    order = single * num_single_frame_decoder + temporal * (num_decoder - num_single_frame_decoder)
    return order[2:]


def check_operation_order(
    operation_order: list[str],
    num_decoder: int,
    num_single_frame_decoder: int,
    temp_graph_model,
) -> None:
    """Refuse an order with unknown operations, a refine count other than ``num_decoder``
    or not ending in one, a single-frame decoder count outside [1, ``num_decoder``], or a
    ``temp_gnn`` without its ``temp_graph_model`` config."""
    unknown = sorted(set(operation_order) - set(OPERATIONS))
    if unknown:
        raise ValueError(
            f'Sparse4DHead: unknown operations {unknown} in operation_order; known: {OPERATIONS}'
        )
    refines = operation_order.count('refine')
    if refines != num_decoder or operation_order[-1] != 'refine':
        raise ValueError(
            f'Sparse4DHead: operation_order has {refines} refine operations and must end '
            f'with one; num_decoder is {num_decoder}'
        )
    if not 0 < num_single_frame_decoder <= num_decoder:
        raise ValueError(
            f'Sparse4DHead: num_single_frame_decoder must be in [1, '
            f'{num_decoder}], got {num_single_frame_decoder}'
        )
    if 'temp_gnn' in operation_order and temp_graph_model is None:
        raise ValueError(
            "Sparse4DHead: operation_order uses 'temp_gnn' but temp_graph_model is not set"
        )
