"""The orchestrator: job queue, simulation loop, results and the HTTP API workers talk to."""
