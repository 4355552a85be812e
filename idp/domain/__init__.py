"""Pure Python rules of the identity provider: no Flask, no database, no network."""
