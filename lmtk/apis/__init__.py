"""lmtk.apis."""
