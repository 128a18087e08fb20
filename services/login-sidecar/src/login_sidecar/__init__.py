"""The login pod's sidecar: moves the webserver's login events into the shared volume, exactly once, and
ships them to an external sink, at least once (see docs/design.md, "The shared volume")."""
