"""Business rules of ingest: canonical models, normalisation, identity resolution, order lifecycle. No I/O."""
