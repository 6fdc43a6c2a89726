"""Loading: set-based writes of one batch and its checkpoint, in one transaction."""
