#!/bin/sh
# Builds the contract's descriptors from proto/ with buf (from the repository's npm install).
# Debian's grpcio-tools ships protoc 3.5.1, which cannot compile proto3 `optional` fields (Skein's
# Record.value uses one to tell null from empty), so the example loads these descriptors into the
# official protobuf runtime instead of protoc-generated _pb2 modules.
set -e
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$here/gen"
cd "$here/../.." && npx --no-install buf build -o "$here/gen/skein.binpb"
