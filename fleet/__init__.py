"""Operating a whole fleet described by one fleet file: ``cadenza fleet ...``."""
