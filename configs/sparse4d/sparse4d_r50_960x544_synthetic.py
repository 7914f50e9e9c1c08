# The core Sparse4D v3 ("baseline" in the paper's ablation) on synthetic warehouse scenes.
#   python tools/make_synthetic.py data/synthetic/raw/Warehouse_000 --seed 0
#   python tools/create_data.py data/synthetic/raw/Warehouse_000 --out data/synthetic/ovpkl/train
#   python tools/train.py configs/sparse4d/sparse4d_r50_960x544_synthetic.py
_base_ = [
    '../_base_/models/sparse4d_r50.py',
    '../_base_/datasets/synthetic_warehouse.py',
    '../_base_/schedules/adamw_cosine_tao.py',
    '../_base_/default_runtime.py',
]
