"""Builders: one small class per tool behind the ``Backend`` protocol (see base.py)."""
