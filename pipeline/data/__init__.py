"""Data layer: manifests, identity-disjoint splits, VCOP sequences, the decoded cache and its loaders."""
