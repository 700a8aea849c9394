"""Processing algorithms: thin wrappers from parameters to a core call to outputs."""
