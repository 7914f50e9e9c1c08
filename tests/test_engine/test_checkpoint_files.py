"""read_checkpoint tells what an unusable file is; find_resumable_checkpoint picks the
newest checkpoint that loads. Real files throughout: random bytes, a truncated archive, a
pickle with numpy objects."""

import os
import shutil

import numpy as np
import pytest
import torch

from mmsparse4d.engine.checkpoint_files import find_resumable_checkpoint, read_checkpoint
from mmsparse4d.utils.input_error import InputError


def save_training_checkpoint(path, iteration, legacy=False):
    """A checkpoint as the Runner writes one: weights and meta.iter."""
    state = {
        'state_dict': {'weight': torch.full((64,), float(iteration))},
        'meta': {'iter': iteration, 'epoch': 0},
    }
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    return path


def truncate(path, keep=200):
    path.write_bytes(path.read_bytes()[:keep])
    return path


def test_a_checkpoint_loads_whole_and_memory_mapped(tmp_path):
    path = save_training_checkpoint(tmp_path / 'iter_3.pth', 3)
    for mmap in (False, True):
        loaded = read_checkpoint(path, mmap=mmap)
        assert loaded['meta']['iter'] == 3 and float(loaded['state_dict']['weight'][0]) == 3
    legacy = save_training_checkpoint(tmp_path / 'legacy.pth', 4, legacy=True)
    assert read_checkpoint(legacy, mmap=True)['meta']['iter'] == 4  # mmap is zip-only


def test_each_unusable_file_is_named_with_what_it_is(tmp_path):
    random_bytes = tmp_path / 'random.pth'
    random_bytes.write_bytes(np.random.default_rng(1).bytes(2048).replace(b'\x80', b'\x00'))
    with pytest.raises(InputError, match='random.pth: not a checkpoint: neither a torch zip'):
        read_checkpoint(random_bytes)
    random_bytes.write_bytes(b'\x80' + random_bytes.read_bytes())  # a pickle opcode first
    with pytest.raises(
        InputError, match='not a checkpoint: it starts like a torch pickle'
    ) as caught:
        read_checkpoint(random_bytes)
    assert 'weights_only' not in str(caught.value)  # torch's advice, wrong here
    empty = tmp_path / 'empty.pth'
    empty.write_bytes(b'')
    with pytest.raises(InputError, match=r'empty.pth: empty file \(0 bytes\)'):
        read_checkpoint(empty)
    with pytest.raises(InputError, match='missing.pth: checkpoint not found'):
        read_checkpoint(tmp_path / 'missing.pth')
    with pytest.raises(InputError, match='is not a file'):
        read_checkpoint(tmp_path)

    truncated = truncate(save_training_checkpoint(tmp_path / 'iter_1.pth', 1))
    with pytest.raises(InputError, match='iter_1.pth: truncated checkpoint: a torch zip'):
        read_checkpoint(truncated, mmap=True)
    legacy = truncate(save_training_checkpoint(tmp_path / 'legacy.pth', 1, legacy=True), 400)
    with pytest.raises(InputError, match='legacy.pth: truncated or damaged checkpoint'):
        read_checkpoint(legacy)

    tensor = tmp_path / 'tensor.pth'
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(InputError, match='a torch file holding a Tensor, not a checkpoint'):
        read_checkpoint(tensor)


def test_a_pickle_the_safe_loader_refuses_names_its_globals(tmp_path):
    foreign = tmp_path / 'foreign.pth'
    torch.save({'state_dict': {}, 'meta': {'lr': np.float64(1e-4)}}, foreign)
    with pytest.raises(InputError) as caught:
        read_checkpoint(foreign)
    message = str(caught.value)
    assert message.startswith(f"{foreign}: holds Python objects that torch's safe")
    assert 'numpy' in message and 'multiarray' in message  # the offending global, named
    assert 'Only if you trust its origin' in message
    assert '\n' not in message


def test_resume_takes_what_last_checkpoint_names_when_it_loads(tmp_path):
    first = save_training_checkpoint(tmp_path / 'iter_1.pth', 1)
    save_training_checkpoint(tmp_path / 'iter_2.pth', 2)
    (tmp_path / 'last_checkpoint').write_text(str(first))
    choice = find_resumable_checkpoint(tmp_path)
    assert choice.checkpoint == str(first) and not choice.notes and not choice.trouble
    assert choice.summary(tmp_path) == f'--resume: resuming from {first}'


def test_resume_passes_over_an_empty_pointer_and_a_truncated_checkpoint(tmp_path):
    older = save_training_checkpoint(tmp_path / 'iter_1.pth', 1)
    newest = truncate(save_training_checkpoint(tmp_path / 'iter_2.pth', 2))
    os.utime(older, (1, 1))  # modification times set the order
    (tmp_path / 'last_checkpoint').write_text('')
    choice = find_resumable_checkpoint(tmp_path)
    assert choice.checkpoint == str(older) and choice.trouble
    summary = choice.summary(tmp_path)
    assert f'{tmp_path / "last_checkpoint"} is empty' in summary
    assert f'{newest.name}: truncated checkpoint' in summary
    assert summary.endswith(f'resuming from the newest complete checkpoint {older}')


def test_resume_passes_over_a_pointer_to_a_missing_file(tmp_path):
    kept = save_training_checkpoint(tmp_path / 'iter_5.pth', 5)
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_6.pth'))
    choice = find_resumable_checkpoint(tmp_path)
    assert choice.checkpoint == str(kept)
    assert choice.notes == [
        f'{tmp_path / "last_checkpoint"} names {tmp_path}/iter_6.pth: not found'
    ]


def test_resume_in_a_copied_work_dir_takes_its_own_checkpoint(tmp_path):
    original, copy = tmp_path / 'original', tmp_path / 'copy'
    original.mkdir()
    save_training_checkpoint(original / 'iter_6.pth', 6)
    (original / 'last_checkpoint').write_text(str(original / 'iter_6.pth'))
    shutil.copytree(original, copy)
    choice = find_resumable_checkpoint(copy)
    assert choice.checkpoint == str(copy / 'iter_6.pth')
    assert choice.notes == [
        f'{copy / "last_checkpoint"} names {original / "iter_6.pth"}, outside {copy}: its '
        'namesake here'
    ]


def test_resume_with_nothing_complete_starts_from_scratch_and_says_so(tmp_path):
    truncate(save_training_checkpoint(tmp_path / 'iter_1.pth', 1))
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_1.pth'))
    (tmp_path / 'not_training.pth').write_bytes(b'')
    choice = find_resumable_checkpoint(tmp_path)
    assert choice.checkpoint is None and choice.trouble
    summary = choice.summary(tmp_path)
    assert summary.startswith(f'--resume: no complete checkpoint in {tmp_path} (')
    assert 'iter_1.pth: truncated checkpoint' in summary and 'not_training.pth: empty' in summary
    assert summary.endswith('training starts from scratch')
    start = str(tmp_path / 'start.pth')
    assert choice.summary(tmp_path, start=start).endswith(f'training starts from load_from {start}')

    fresh = find_resumable_checkpoint(tmp_path / 'new')
    assert fresh.checkpoint is None and not fresh.trouble
    torch.save({'state_dict': {}}, tmp_path / 'new_weights.pth')  # weights only: no meta.iter
    (tmp_path / 'last_checkpoint').unlink()
    (tmp_path / 'iter_1.pth').unlink()
    (tmp_path / 'not_training.pth').unlink()
    choice = find_resumable_checkpoint(tmp_path)
    assert choice.checkpoint is None
    assert 'new_weights.pth: not a training checkpoint' in choice.summary(tmp_path)
