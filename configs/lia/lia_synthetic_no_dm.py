# The Table 4 ablation on synthetic faces: no motion dictionary, the MLP outputs the latent path.
_base_ = "./lia_synthetic_m20.py"
model = dict(motion_basis=dict(_delete_=True, type="lmtk.DirectPath.v1"))
