"""The login pod's web server: login form and JSON API, stateless sessions, one audit event per attempt."""
