"""HTTP routes of ingest: channel webhooks, and the tenant-scoped admin API."""
