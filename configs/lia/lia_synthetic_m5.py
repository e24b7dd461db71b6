# The Table 5 sweep on synthetic faces: M = 5 directions.
_base_ = "./lia_synthetic_m20.py"
model = dict(motion_basis=dict(num_directions=5))
