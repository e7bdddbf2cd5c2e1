"""Fixture facts for the fact tests (the builders live in tests/factbuilders.py)."""

from tests.factbuilders import live_facts, offline_facts

__all__ = ["live_facts", "offline_facts"]
