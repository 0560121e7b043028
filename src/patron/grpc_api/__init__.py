"""The gRPC transport (API.md "gRPC", issue 12): ``patron.v1.CustomerService`` on a
``grpc.aio`` server, its interceptors and the PatronError → status code table.

Servicers only translate: they build a :class:`patron.usecases.ServiceContext` from the
call's principal and tenant and call the same service operations as the HTTP routes.
``v1`` holds the modules generated from ``proto/patron/v1`` (``make proto``).
"""
