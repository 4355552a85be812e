"""Use cases of the identity provider. No Flask, no grpc, no generated code here."""
