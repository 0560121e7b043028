"""Generated from ``proto/patron/v1/customers.proto`` by ``make proto``; do not edit."""
