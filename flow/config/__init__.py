"""The design config: TOML and flags merged over the defaults (load) into typed frozen
dataclasses (schema), parsed once at the edge."""
