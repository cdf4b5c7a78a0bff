"""A wave's results: read from the store, computed by stats and ranking, kept in the result store."""
