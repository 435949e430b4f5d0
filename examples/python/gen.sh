#!/usr/bin/env bash
# Regenerates the Python stubs of ringcache.v1.Cache (ringcache/v1/cache_pb2.py
# and cache_pb2_grpc.py beside this script) from proto/ringcache/v1/cache.proto.
# Run it after changing cache.proto and commit the result.
#
# It uses Debian's protoc and gRPC plugin, which match Debian's Python
# runtime (python3-protobuf 3.21 = Python protobuf 4.21, python3-grpcio 1.51):
#
#   apt-get install -y protobuf-compiler protobuf-compiler-grpc libprotobuf-dev
#   examples/python/gen.sh
#
# (libprotobuf-dev brings google/protobuf/duration.proto, which cache.proto
# imports; apt installs it with protobuf-compiler unless recommends are off.)
#
# Not Debian's python3-grpc-tools: it bundles protoc 3.5.1, whose old-style
# generated code newer protobuf runtimes refuse.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
proto=$(cd "$here/../../proto" && pwd)

for tool in protoc grpc_python_plugin; do
  command -v "$tool" >/dev/null || {
    echo "gen.sh: $tool not found: apt-get install -y protobuf-compiler protobuf-compiler-grpc libprotobuf-dev" >&2
    exit 1
  }
done

# google/protobuf/duration.proto comes with libprotobuf-dev (/usr/include).
wkt=/usr/include/google/protobuf/duration.proto
[ -f "$wkt" ] || {
  echo "gen.sh: $wkt not found: apt-get install -y libprotobuf-dev" >&2
  exit 1
}
includes=(-I "$proto" -I /usr/include)

out="$here/ringcache/v1"
mkdir -p "$out"
rm -f "$out"/cache_pb2.py "$out"/cache_pb2_grpc.py
protoc "${includes[@]}" \
  --python_out="$here" \
  --grpc_python_out="$here" \
  --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" \
  "$proto/ringcache/v1/cache.proto"
# Regular packages, so `from ringcache.v1 import cache_pb2` (the import the
# generated gRPC module uses) finds these files first.
: >"$here/ringcache/__init__.py"
: >"$out/__init__.py"
echo "gen.sh: generated with $(protoc --version) and grpc_python_plugin from $(dpkg-query -W -f='protobuf-compiler-grpc ${Version}' protobuf-compiler-grpc 2>/dev/null || echo 'an unknown package')"
ls "$out"
