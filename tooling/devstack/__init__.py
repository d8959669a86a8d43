"""Local infrastructure and the `make run` launcher."""
