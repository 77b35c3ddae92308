"""The FelesSimulation kind: its spec and status, the children built for it, its kopf handlers and its poller."""
