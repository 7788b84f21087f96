"""Placeholder: filled by the operation family's owner."""
