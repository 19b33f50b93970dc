#!/bin/sh
# Sets the version of ephemerd in its one place, AC_INIT in configure.ac,
# and says what to do next.
#
#	deploy/release.sh 1.2.0		set the version
#	deploy/release.sh		print the current one
#
# A version is MAJOR.MINOR.PATCH with an optional -suffix (1.2.0-rc1).
# Pushing the tag vVERSION starts .github/workflows/release.yml, which
# builds, tests and publishes the tarball and the image.
set -eu

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
CONFIGURE_AC=$SRCDIR/configure.ac

# The version in the file $1 (default configure.ac).
current() {
	sed -n 's/^AC_INIT(\[[^]]*\], *\[\([^]]*\)\].*/\1/p' \
	    "${1:-$CONFIGURE_AC}"
}

if [ $# -eq 0 ]; then
	current
	exit 0
fi
if [ $# -ne 1 ]; then
	echo "usage: $0 [VERSION]" >&2
	exit 2
fi
NEW=$1
if ! printf '%s\n' "$NEW" |
    grep -Eq '^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.]+)?$'; then
	echo "$0: '$NEW' is not a version such as 1.2.0 or 1.2.0-rc1" >&2
	exit 2
fi
OLD=$(current)
if [ -z "$OLD" ]; then
	echo "$0: no AC_INIT version found in $CONFIGURE_AC" >&2
	exit 1
fi
if [ "$OLD" = "$NEW" ]; then
	echo "$0: the version is already $NEW" >&2
	exit 1
fi

TMP=$CONFIGURE_AC.release.$$
trap 'rm -f "$TMP"' EXIT
sed "s/^\(AC_INIT(\[[^]]*\], *\[\)[^]]*\]/\1$NEW]/" "$CONFIGURE_AC" >"$TMP"
if [ "$(current "$TMP")" != "$NEW" ]; then
	echo "$0: could not set the version in $CONFIGURE_AC" >&2
	exit 1
fi
cat "$TMP" >"$CONFIGURE_AC"
echo "version: $OLD -> $NEW (configure.ac)"
echo "next: autoreconf -fi && make distcheck, then"
echo "      git commit -am 'Release $NEW' && git tag -a v$NEW -m v$NEW"
echo "      git push origin HEAD v$NEW"
