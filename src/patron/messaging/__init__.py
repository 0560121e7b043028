"""Meta's messaging webhooks received directly (``GET, POST /webhooks/meta``): the
subscribe handshake, the ``X-Hub-Signature-256`` check, and each messaging event turned
into a customer (by PSID / IGSID) and a communication of the channel's tenant."""
