"""service layer: one business operation per activity; the only callers of ``commit()``."""
