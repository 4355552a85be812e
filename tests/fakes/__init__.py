"""Fakes of the outside world for tests: real servers speaking the real protocols."""
