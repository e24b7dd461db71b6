"""lmtk.losses."""
