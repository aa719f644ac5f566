#!/usr/bin/env bash
# Resolves the Apache Kafka broker's jars from Maven Central with `mvn` (the pom
# in kafka/pom.xml pins the release) into deployments/local/.kafka-jars/<version>/,
# a git-ignored cache the Go launcher (internal/devenv/kafka.go) runs from.
#
# Idempotent: when the cache already holds a complete copy made from the same pom
# (a .complete stamp with the pom's checksum) it only says so, so a second run
# needs no network. The jars are copied to a temporary directory first and moved
# into place only when mvn succeeded, so an interrupted run leaves no half cache.
#
# Needs Java 17+ (Kafka 4.x brokers refuse older) and Maven.
#
# Usage: deployments/local/install-kafka.sh [--force]   (from any directory)
#   --force  resolve again even when the cache looks complete
#   env KAFKA_JARS_DIR   cache root (default deployments/local/.kafka-jars)
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" install-kafka

pom="$here/kafka/pom.xml"
jars="${KAFKA_JARS_DIR:-$here/.kafka-jars}"

force=0
for a in "$@"; do
	case "$a" in
	--force) force=1 ;;
	-h | --help)
		header 2 15
		exit 0
		;;
	*) die "unknown argument '$a' (want --force)" ;;
	esac
done

[[ -f "$pom" ]] || die "missing $pom: it is part of the repo; restore it with git"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom" | head -n1)"
[[ -n "$version" ]] || die "no <kafka.version> in $pom"
dest="$jars/$version"
sum="$(sha256sum "$pom" | cut -d' ' -f1)"

if [[ $force -eq 0 && -f "$dest/.complete" && "$(head -n1 "$dest/.complete")" == "$sum" ]]; then
	say "Kafka $version jars already in $dest ($(find "$dest" -name '*.jar' | wc -l) jars); nothing to do"
	exit 0
fi

# Java first: without it the jars are useless, and the message says what to do.
if ! command -v java >/dev/null 2>&1; then
	die "java not found: Kafka $version needs Java 17 or newer; on Debian: apt-get install -y openjdk-17-jre-headless"
fi
jv="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | head -n1)"
if [[ -z "$jv" || "${jv%%.*}" -lt 17 ]]; then
	die "java $(command -v java) is version '${jv:-unknown}': Kafka $version needs Java 17 or newer; on Debian: apt-get install -y openjdk-17-jre-headless (and update-alternatives --config java)"
fi
if ! command -v mvn >/dev/null 2>&1; then
	die "mvn not found: it resolves Kafka's jars from Maven Central; on Debian: apt-get install -y maven"
fi

mkdir -p "$jars"
tmp="$(mktemp -d "$jars/.tmp-$version-XXXXXX")"
log="$tmp.log"
cleanup() { rm -rf "$tmp" "$log"; }
trap cleanup EXIT

say "resolving Kafka $version from Maven Central with mvn into $dest"
t0="$(now)"
if ! mvn -B -f "$pom" dependency:copy-dependencies \
	-DincludeScope=runtime -DoutputDirectory="$tmp" -Dmdep.overWriteReleases=true >"$log" 2>&1; then
	tail -n 25 "$log" >&2
	die "mvn could not resolve Kafka $version (output above; is Maven Central reachable, or a proxy needed in ~/.m2/settings.xml?); nothing was installed, re-run when fixed"
fi
n="$(find "$tmp" -name '*.jar' | wc -l)"
for want in "kafka_2.13-$version.jar" "kafka-server-$version.jar" "kafka-raft-$version.jar" "kafka-metadata-$version.jar" "kafka-storage-$version.jar" "kafka-clients-$version.jar"; do
	[[ -f "$tmp/$want" ]] || die "mvn finished but $want is missing from the copy ($n jars); nothing was installed"
done
printf '%s\n%s\n' "$sum" "$(date -u +%FT%TZ)" >"$tmp/.complete"
rm -rf "$dest"
mv "$tmp" "$dest"
say "installed $n jars ($(du -sh "$dest" | cut -f1)) for Kafka $version in $(elapsed "$t0" 0)s: $dest"
