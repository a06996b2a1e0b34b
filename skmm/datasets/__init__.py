"""Datasets that ship with skmm."""

from ._fashion import load_fashion

__all__ = ["load_fashion"]
