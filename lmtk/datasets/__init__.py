"""lmtk.datasets."""
