"""The rules in force: the in-memory snapshot, how changes reach every server, the decision."""
