"""Stand-ins for services no test machine has (a Windows host's WS-Management endpoint)."""
