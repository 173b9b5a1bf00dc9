"""Command line: ``semguard <command>``; each command lives in its own module."""
