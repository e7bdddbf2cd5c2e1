"""Built-in checks for Windows AMIs and hosts (CHECKS.md, "Windows")."""
