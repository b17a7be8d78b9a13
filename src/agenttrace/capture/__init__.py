"""Recording inside the agent's process: the API, the OTel wiring, the Parquet exporter and its sink."""
