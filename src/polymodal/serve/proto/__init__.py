"""Generated gRPC modules for ``polymodal.v1`` (from ``polymodal.proto``; do not edit them).

Regenerate after changing the proto with ``sh scripts/gen_proto.sh``, which runs::

    python -m grpc_tools.protoc -I src --python_out=src --pyi_out=src --grpc_python_out=src \
        src/polymodal/serve/proto/polymodal.proto
"""
