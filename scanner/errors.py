"""The two ways a scan ends early, and the exit codes they map to."""

from __future__ import annotations


class TargetError(Exception):
    """The target string or its options are wrong (exit code 2); one line for people."""


class ScanAborted(Exception):
    """The scan could not complete (exit code 3); the report is still written."""
