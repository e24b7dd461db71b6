"""lmtk.models."""
