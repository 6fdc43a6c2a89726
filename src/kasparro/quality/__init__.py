"""Data quality: schema drift of the API sources, run and price anomalies, and their storage."""
