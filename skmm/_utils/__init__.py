"""Helpers shared by skmm's packages: input validation and error messages,
devices, a bounded cache, the modality base and test fixtures."""
