# Table 5: motion dictionary size M = 40.
_base_ = "./lia_vox_m20.py"
model = dict(motion_basis=dict(num_directions=40))
