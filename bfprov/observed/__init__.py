"""The observed state: the only reader of output directories and bfprov's records."""
