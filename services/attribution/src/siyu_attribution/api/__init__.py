"""HTTP routes of the attribution service."""
