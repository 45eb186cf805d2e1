"""The origin: the store of record that edges fetch from (published tracks, catalog, rights)."""
