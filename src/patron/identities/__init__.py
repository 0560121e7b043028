"""Identity resolution: the ways a customer is recognised, and who holds each one."""
