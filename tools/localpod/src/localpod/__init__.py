"""Local mode: the login pod's four services as local processes, supervised the way a kubelet would."""
