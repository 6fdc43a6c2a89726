"""ETL orchestration: runs, leases, checkpoints, schedules and fault injection."""
