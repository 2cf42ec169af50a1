"""The desired state: profiles (YAML) -> validated models, and secret references."""
