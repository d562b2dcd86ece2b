"""The processes a scaled-out deployment runs beside the app: PostgreSQL and a shared model server,
started on loopback for tests, benchmarks and single-machine set-ups."""
