"""Deployment checks and vendored schemas for the Docker, Compose and Kubernetes files."""
