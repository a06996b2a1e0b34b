"""Tabular columns in the end-to-end nets (TabularModality): numeric columns
standardised, categorical ones embedded, learned on the training rows."""

from ._modality import TabularModality

__all__ = ["TabularModality"]
