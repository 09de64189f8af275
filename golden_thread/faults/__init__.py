"""Fault scenarios: the services under load while processes, the database and the broker fail,
checked for lost and duplicated effects (`golden-thread faults`, tests/reliability)."""
