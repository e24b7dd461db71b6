# Table 4, "w/o D_m": the motion MLP outputs the latent path directly, no orthogonal basis.
_base_ = "./lia_vox_m20.py"
model = dict(motion_basis=dict(_delete_=True, type="lmtk.DirectPath.v1"))
