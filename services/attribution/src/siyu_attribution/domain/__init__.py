"""Business rules of attribution and commissions: plain data and functions, no I/O."""
