#!/usr/bin/env sh
# Regenerate the gRPC modules in src/polymodal/serve/proto/ from polymodal.proto (checked in).
# Run from anywhere, with grpcio-tools installed (pip install -e '.[dev]'):  sh scripts/gen_proto.sh
# The proto is compiled relative to src/, so the generated stub imports
# `polymodal.serve.proto.polymodal_pb2` (a package import, not grpc's default top-level one).
# The generated code requires grpcio and protobuf at least as new as the grpcio-tools used here.
set -eu
cd "$(dirname "$0")/.."
python -m grpc_tools.protoc -I src \
    --python_out=src --pyi_out=src --grpc_python_out=src \
    src/polymodal/serve/proto/polymodal.proto
echo "regenerated src/polymodal/serve/proto/polymodal_pb2{.py,.pyi,_grpc.py}"
