"""Test doubles (see fakes.py): never imported by the answer path."""
