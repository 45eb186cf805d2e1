"""Edges: caching proxies that serve players, one or more per region."""
