"""Reference data and input rules shared by the IdP and the linking service.

The two services share nothing but the contract in ``protos/`` and this package: Russia's
federal subjects (:mod:`elk_common.regions`) and the normalisation of phone numbers and
e-mail addresses (:mod:`elk_common.contacts`), so that both spell a region or a contact the
same way. Pure Python: no Flask, gRPC or SQLAlchemy. A value that breaks a rule raises
:class:`elk_common.errors.InvalidValue`; each service maps it to its own domain error at its
boundary (``idp.domain.errors.ValidationError``, ``linking_service.domain.InvalidArgument``).
"""
