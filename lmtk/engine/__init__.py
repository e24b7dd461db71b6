"""lmtk.engine."""
