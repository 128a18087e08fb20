"""`make bench`: the login pod measured in local mode, side by side with a direct upstream and nginx (issue 5)."""
