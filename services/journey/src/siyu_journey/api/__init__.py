"""HTTP API of the journey service."""
