"""Operating a whole fleet from its fleet file: run it on one machine, watch it, stop it."""
