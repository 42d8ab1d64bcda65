#!/usr/bin/env bash
# Regenerates the FlatBuffers Java classes of this package from shard.fbs with Debian's flatc 2.0.8
# (package flatbuffers-compiler). The output must match com.google.flatbuffers:flatbuffers-java
# 2.0.8, which the parent POM pins; other flatc versions generate code that jar rejects.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
JAVA_ROOT=$(cd "$HERE/../../../.." && pwd)   # cae-java/src/main/java
FLATC=${FLATC:-flatc}
version=$("$FLATC" --version)
if [ "$version" != "flatc version 2.0.8" ]; then
    echo "regenerate.sh: need flatc 2.0.8 (Debian flatbuffers-compiler), found: $version" >&2
    exit 1
fi
rm -f "$HERE"/Shard.java
"$FLATC" --java -o "$JAVA_ROOT" "$HERE/shard.fbs"
echo "regenerated $(cd "$HERE" && ls ./*.java | tr '\n' ' ')"
