"""Faithful local fakes of the six social sign-in providers (VK ID, Mail, OK, Yandex ID,
Google, Facebook): one small Flask app per provider reproducing the protocol and the errors
of ../shared/reference/social-providers.md §8, each with a page where a person picks or types
a test identity or denies.

Test and demo infrastructure, outside the services: ``idp`` never imports this package
(tests/test_boundaries.py), and swapping a fake for the real provider is configuration only
(``IDP_SOCIAL_<PROVIDER>_*_URL``). ``social-fakes`` (:mod:`social_fakes.server`) serves all
six; tests start them with :func:`social_fakes.server.start`.
"""
