"""Kasparro: a self-hostable backend and ETL service for cryptocurrency market data."""

__version__ = "0.1.0"
