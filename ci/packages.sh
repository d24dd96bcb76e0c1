#!/usr/bin/env bash
# Builds the packages (cmake --workflow --preset package: libfut0 and
# libfut-dev .debs and a .tar.gz), installs the .deb pair with dpkg, builds
# ci/consumers/app.c against the installed packages (find_package and
# pkg-config, shared and static) and runs it, then purges the packages,
# also when a step fails.  Needs root (dpkg -i) and a system without another
# libfut installed.  Usage: ci/packages.sh
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src"
say() { echo; echo "-- packages: $*"; }

if grep -q "ok installed" <<<"$(dpkg-query -W -f='${Status}\n' libfut0 libfut-dev 2>/dev/null)"; then
    echo "libfut0 or libfut-dev is already installed: refusing to replace it"; exit 1
fi

say "cmake --workflow --preset package"
rm -rf build/package/packages
cmake --workflow --preset package >/dev/null
out=build/package/packages
ls -l "$out"
runtime=$(echo "$out"/libfut0_*.deb)
dev=$(echo "$out"/libfut-dev_*.deb)
tgz=$(echo "$out"/fut-*.tar.gz)
for f in "$runtime" "$dev" "$tgz"; do [[ -f $f ]] || { echo "missing $f"; exit 1; }; done

# What goes where: the shared library alone in libfut0, the rest in -dev.
# (Listings go through variables: grep -q would cut a pipe short.)
has() { grep -qE "$2" <<<"$1" || { echo "$3 lacks $2"; exit 1; }; }
list=$(dpkg-deb -c "$runtime")
has "$list" '/libfut\.so\.0 ->' libfut0
has "$list" '/libfut\.so\.0\.[0-9]+\.[0-9]+$' libfut0
if grep -E 'include/|\.a$|\.pc$|cmake/|libfut\.so ->' <<<"$list"; then
    echo "libfut0 holds development files"; exit 1
fi
list=$(dpkg-deb -c "$dev")
for want in 'include/fut\.h$' 'include/fut/version\.h$' 'libfut\.a$' 'libfut\.so ->' \
    'pkgconfig/fut\.pc$' 'cmake/fut/futConfig\.cmake$'; do
    has "$list" "$want" libfut-dev
done
list=$(tar tzf "$tgz")
for want in 'include/fut\.h$' 'libfut\.a$' 'libfut\.so\.0$' 'fut\.pc$' 'futConfig\.cmake$'; do
    has "$list" "$want" "$(basename "$tgz")"
done

work=$(mktemp -d)
cleanup() {
    say "dpkg -P libfut-dev libfut0"
    dpkg -P libfut-dev libfut0 >/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

say "dpkg -i $(basename "$runtime") $(basename "$dev")"
dpkg -i "$runtime" "$dev"

say "find_package(fut CONFIG) from /usr"
cmake -S ci/consumers/find_package -B "$work/cmake" -DCMAKE_BUILD_TYPE=Release | grep "consumer:"
cmake --build "$work/cmake" -j2 >/dev/null
"$work/cmake/app"
"$work/cmake/app_static"
has "$(ldd "$work/cmake/app")" "libfut.so.0 => (/usr)?/lib/" "app's ldd"

say "pkg-config fut (shared, and static with -l:libfut.a)"
# shellcheck disable=SC2046 # pkg-config's output is meant to be split
cc -std=c11 -Wall -Wextra -Wpedantic -Werror ci/consumers/app.c -o "$work/pc" $(pkg-config --cflags --libs fut)
"$work/pc"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Wpedantic -Werror ci/consumers/app.c -o "$work/pc-static" $(pkg-config --cflags fut) \
    $(pkg-config --static --libs fut | sed 's/-lfut\b/-l:libfut.a/')
"$work/pc-static"
if grep libfut <<<"$(ldd "$work/pc-static")"; then echo "pc-static links libfut.so"; exit 1; fi
say "the installed packages work"
