"""Orders, appointments and their per-customer stats (API.md "Orders, appointments, stats"),
recorded over HTTP or consumed from the orders and scheduling services' events."""
