"""Consensus reference prices: one robust price per canonical asset from its sources' latest
observations (`method`, pure), stored as a time series and read back (`store`)."""
