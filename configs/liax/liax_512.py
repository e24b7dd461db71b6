# LIA-X at its published size (512 px): the architecture of the published lia-x.pt. For inference:
#   lmtk.load_model("lia-x.pt") infers this from the checkpoint; this config builds it with fresh weights.
_base_ = ["../_base_/models/liax.py"]
