"""lmtk.evaluation."""
