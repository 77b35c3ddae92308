"""The FELES Kubernetes operator (kopf): FelesSimulation resources to orchestrator and workers."""
