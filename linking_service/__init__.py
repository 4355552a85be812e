"""ЕЛК linking service: attaches billing accounts («лицевые счета») to identities over gRPC.

The gRPC service itself arrives with its own issue; this package is the seam it grows in.
"""
