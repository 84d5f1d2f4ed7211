"""The gRPC service layer: servicers, status mapping and server lifecycle.

This is the only package that imports grpc.
"""
