"""`.status` of a FelesSimulation: its model and pure functions that compute it, one module per concern.

The poller observes (the orchestrator's /v1/status, the StatefulSet, the pods: `observation`, `pods`) and
`transitions.next_status` turns the previous status (`schema`) plus one observation into the next status, with
its `conditions`, and the Kubernetes Events worth posting (`events`).
"""
