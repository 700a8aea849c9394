"""Quality: metrics on gap pixels, evaluation of filled rasters against a reference, HTML/CSV/JSON
reports, and simulated gaps (real cloud shapes laid on clear images)."""
