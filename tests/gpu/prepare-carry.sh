#!/usr/bin/env bash
# Prepares, on a build machine, what the GPU machine lacks for the Java stages of run.sh: a
# jlinked JDK 25 runtime (java.base and java.logging: enough for cae info, bench and
# pretrain --no-report) and the CLI jar, in .gpu-carry/ (ignored by git; name it in `carry`
# when sending the tree). About 36 MB.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../scripts/env.sh
. "$root/scripts/env.sh"
find_jdk
(cd "$root" && mvn -q -DskipTests -Dcae.cuda=OFF -Dcae.emu=OFF package)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$JAVA_HOME/bin/jlink" --add-modules java.base,java.logging --strip-debug --no-header-files --no-man-pages \
    --compress=zip-9 --output "$tmp/jre"
rm -rf "$root/.gpu-carry"
mkdir -p "$root/.gpu-carry"
tar czf "$root/.gpu-carry/jre.tgz" -C "$tmp" jre
cp "$root/cae-java/target/cae-cli.jar" "$root/.gpu-carry/"
du -sh "$root/.gpu-carry"
