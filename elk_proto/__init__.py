"""The contract between the services, generated from ``protos/`` by ``make proto``.

Every module below this one (``elk_proto.linking.v1.linking_pb2``, ``…_pb2_grpc``, ``.pyi``)
is built by grpcio-tools from the .proto files and never committed; this file only makes the
package known to the installer. Only the gRPC edges import it: the linking service's servicer,
server and conversion module, and the IdP's linking adapter.
"""
