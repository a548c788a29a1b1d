"""Table Storage, one module per table: employees, runs, configurations, leases."""
