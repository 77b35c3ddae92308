"""The worker: registers, long-polls for jobs, trains devices' partitions, posts updates."""
