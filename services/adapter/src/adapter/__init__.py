"""The login pod's adapter: turns the login events in SHARED_DIR/events/ into XML documents valid against
contracts/login-events.xsd (docs/design.md)."""
