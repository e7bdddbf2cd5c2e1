"""AWS plumbing: sessions, errors, and the resources a scan creates."""
