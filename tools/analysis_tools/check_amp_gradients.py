"""Find where mixed-precision training steps go non-finite, step by step.

    python tools/analysis_tools/check_amp_gradients.py CONFIG [--device cuda] [--amp fp16]
        [--steps 20] [--batch 4] [--cams 6] [--size 480 272] [--boxes 12] [--real-data]
        [--init-scale 65536] [--cfg-options k=v ...]

Runs ``--steps`` training steps under autocast with dynamic loss scaling (``GradScaler``,
plain AdamW) and prints one row per step: the loss scale, whether the losses are finite
(and which are not), how many parameter gradients are non-finite after unscaling (NaN or
inf), the first module whose forward output is non-finite and the first module whose
output receives a non-finite gradient (``NonFiniteTrace``). Overflow that depends on the
scale shows as inf at large scales and disappears once the scaler has halved the scale a
few times; a NaN that stays whatever the scale is a bug in some module's arithmetic, and
the first backward event names the module it came out of. A step with non-finite gradients
never updates the weights (the scaler skips it under fp16; under bf16 the tool does).

``--real-data``: the config's model and the first batches of its training dataloader
(as ``profile_train_step.py --real-data``); otherwise random inputs of the given shape.
"""

import argparse

import torch

from mmsparse4d.deploy.cuda_graph import PRECISIONS
from mmsparse4d.engine.cli import AMP_DTYPES
from mmsparse4d.testing.nonfinite_trace import NonFiniteTrace, nonfinite_kind
from mmsparse4d.testing.train_inputs import (
    add_training_input_arguments,
    config_training_inputs,
    random_training_inputs,
)
from mmsparse4d.utils.devices import check_device
from mmsparse4d.utils.input_error import InputError, run_tool


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--amp', choices=sorted(AMP_DTYPES), default='fp16')
    parser.add_argument('--steps', type=int, default=20)
    add_training_input_arguments(parser)
    parser.add_argument('--init-scale', type=float, default=2.0**16)
    parser.add_argument('--lr', type=float, default=1e-4)
    return parser.parse_args(argv)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    if args.steps < 1 or args.batch < 1:
        raise InputError(f'--steps and --batch must be >= 1, got {args.steps} and {args.batch}')
    check_device(args.device)
    if args.real_data:
        model, _, batches, _ = config_training_inputs(
            args.config, args.device, args.batch, args.steps, cfg_options=args.cfg_options
        )
    else:
        model, batches = random_training_inputs(
            args.config,
            args.device,
            args.batch,
            args.cams,
            args.size,
            args.boxes,
            args.steps,
            args.cfg_options,
        )
    device_type = args.device.split(':')[0]
    # bf16 has fp32's range: scaling is for fp16 only (a disabled scaler passes through).
    scaler = torch.amp.GradScaler(
        device_type, init_scale=args.init_scale, enabled=args.amp == 'fp16'
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    print(
        f'{args.config}: {args.amp} autocast on {args.device}, {args.steps} steps of '
        f'{args.batch} samples ({"real batches" if args.real_data else "random inputs"})'
    )
    print(
        '\n| step | loss scale | loss | non-finite losses | non-finite gradients '
        '| first non-finite output | first non-finite gradient |'
    )
    print('|---:|---:|---:|---|---|---|---|')
    rows = []
    with NonFiniteTrace(model) as trace:
        for step, batch in enumerate(batches):
            trace.reset()
            scale = scaler.get_scale() if scaler.is_enabled() else 1.0
            data = model.data_preprocessor(batch, training=True)
            with torch.autocast(device_type, dtype=PRECISIONS[args.amp]):
                losses = model(**data, mode='loss')
            loss, _ = model.parse_losses(losses)
            bad_losses = sorted(
                name
                for name, value in losses.items()
                if isinstance(value, torch.Tensor) and nonfinite_kind(value)
            )
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            bad_gradients = {}
            for name, parameter in model.named_parameters():
                kind = nonfinite_kind(parameter.grad) if parameter.grad is not None else None
                if kind is not None:
                    bad_gradients[name] = kind
            if scaler.is_enabled():
                scaler.step(optimizer)  # skips the update itself on non-finite gradients
                scaler.update()
            elif not bad_gradients:
                # Without a scaler (bf16) nothing else would keep NaN out of the weights, and
                # the later steps' first events would then point at the wrong module.
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            row = {
                'step': step,
                'scale': scale,
                'loss': float(loss.detach()),
                'nonfinite_losses': bad_losses,
                'nonfinite_gradients': bad_gradients,
                'forward': str(trace.forward) if trace.forward else None,
                'backward': str(trace.backward) if trace.backward else None,
            }
            rows.append(row)
            kinds = sorted(set(bad_gradients.values()))
            gradients = f'{len(bad_gradients)} ({", ".join(kinds)})' if bad_gradients else '0'
            print(
                f'| {step} | {scale:g} | {row["loss"]:.3f} | {", ".join(bad_losses) or "-"} '
                f'| {gradients} | {row["forward"] or "-"} | {row["backward"] or "-"} |',
                flush=True,
            )
    skipped = sum(1 for row in rows if row['nonfinite_gradients'])
    print(f'\n{skipped} of {len(rows)} steps had non-finite gradients (their updates skipped)')
    return rows


if __name__ == '__main__':
    run_tool('check_amp_gradients', main)
