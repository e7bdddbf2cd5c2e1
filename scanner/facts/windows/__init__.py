"""Facts about a Windows guest, each gathered by a PowerShell probe of the one batched script."""
