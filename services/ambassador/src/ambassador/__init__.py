"""The login pod's ambassador: the reverse proxy on port 80, on httpx (`python -m ambassador`)."""
