"""Authlib glue: the authorization server, its grants, client authentication, endpoints.

Authlib's defaults are permissive; everything tightened here is marked ``Tightened:``.
"""
