"""Canonical identity: which source assets are the same real-world asset."""
