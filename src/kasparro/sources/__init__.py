"""Sources: each upstream is one module that fetches raw records (I/O) and normalizes them."""
