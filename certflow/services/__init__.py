"""Application services: the domain logic web, CLI and service-task handlers share.

``billing`` (invoices, numbering, totals, PDF, UBL, fee tables), ``payments`` and ``camt``
(bank statements and matching), ``register`` and ``register_fee`` (the public register and its
yearly fee), ``certificates`` (issuing, copies, the certificate PDF), ``email`` (letters,
newsletter), ``accounts`` and ``access`` (people, roles, passwords, sessions, API tokens,
resets), ``demo`` (the demo's people). A service takes a session (and, for an effect a job
may repeat, a
``certflow.registry.HandlerContext`` whose idempotency key makes the effect happen once) and
never commits; the caller owns the transaction. Services never import the engine, handlers,
web or CLI.
"""
