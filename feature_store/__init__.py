"""What a tick, a label input and a feature are, and where they live (no framework imports here)."""
