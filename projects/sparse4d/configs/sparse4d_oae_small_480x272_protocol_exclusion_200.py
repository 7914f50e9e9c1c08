# Stage 6: the shipped stage 5 (sparse4d_oae_small_480x272_protocol_exclusion_100.py) fine-tuned
# with the same recipe on the protocol's 100 newer training layouts (seeds 108-207 x 128 frames,
# none of them seen before): its weights and learned anchors (the re-identification classifier
# over asset ids left out), 800 iterations at batch 16, 4e-4 after 50 warm-up iterations,
# cosine to 4e-6. Two 10-minute commands on one H200 (docs/training.md):
#   SCENES=100 FIRST_SCENE=100 START_ANCHORS=learned \
#   START_CHECKPOINT=checkpoints/sparse4d_oae_small_480x272_protocol_exclusion_100-cd24460d.pth \
#   CONFIG=projects/sparse4d/configs/sparse4d_oae_small_480x272_protocol_exclusion_200.py \
#   bash tools/recipes/train_protocol.sh work_dirs/protocol_exclusion_200 570
_base_ = ['./sparse4d_oae_small_480x272_protocol_exclusion_100.py']

load_from = (
    'work_dirs/protocol_start_learned_sparse4d_oae_small_480x272_protocol_exclusion_100-cd24460d.pth'
)
