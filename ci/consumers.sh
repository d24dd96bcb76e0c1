#!/usr/bin/env bash
# Builds and runs fut's example consumers (ci/consumers/) out of tree, the
# ways a project can depend on fut:
#   1. find_package(fut CONFIG) against an install prefix (static and shared)
#   2. pkg-config, linking libfut.a (static) and libfut.so (shared)
#   3. add_subdirectory(<fut checkout>)
#   4. FetchContent from the checkout (its git repository at HEAD, or the
#      directory itself when it is not a git checkout)
#   5. add_subdirectory again, with a consumer's flags: gcc -fsanitize=thread
#      -Wcast-qual -Wcast-align=strict, and clang -Wcast-qual -Wcast-align
#      (fut's own warnings are not errors there: FUT_WERROR is off)
# For 3 and 4 it also checks that fut, as a subproject, adds none of its
# tests to the consumer's ctest and builds none of its tests, benchmark,
# peers or examples.  Usage: ci/consumers.sh [work directory]
# (default build/consumers).  Exits non-zero on the first failure.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$src/build/consumers}
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd) # absolute: the consumers' builds run elsewhere
consumers=$src/ci/consumers
gen=(-G "Unix Makefiles" -DCMAKE_BUILD_TYPE=Release)
jobs=2

say() { echo; echo "-- consumers: $*"; }

# fut itself, installed twice: static (the default) and shared.
for kind in static shared; do
    say "install fut ($kind) into $work/prefix-$kind"
    shared=OFF; [[ $kind == shared ]] && shared=ON
    cmake -S "$src" -B "$work/fut-$kind" "${gen[@]}" -DBUILD_SHARED_LIBS=$shared \
        -DFUT_WERROR=ON -DFUT_BUILD_TESTS=OFF -DFUT_BUILD_BENCH=OFF -DFUT_BUILD_EXAMPLES=OFF \
        -DCMAKE_INSTALL_PREFIX="$work/prefix-$kind" >/dev/null
    cmake --build "$work/fut-$kind" -j$jobs >/dev/null
    cmake --install "$work/fut-$kind" >/dev/null
done

# 1. find_package
for kind in static shared; do
    say "find_package(fut CONFIG) against prefix-$kind"
    b=$work/find_package-$kind
    cmake -S "$consumers/find_package" -B "$b" "${gen[@]}" \
        -DCMAKE_PREFIX_PATH="$work/prefix-$kind" | grep "consumer:"
    cmake --build "$b" -j$jobs >/dev/null
    "$b/app"
    if [[ $kind == shared ]]; then
        grep -q "libfut.so.0 => $work/prefix-shared" <<<"$(ldd "$b/app")" ||
            { echo "app does not load prefix-shared's libfut.so.0"; exit 1; }
    fi
done

# 2. pkg-config
cflags=(-std=c11 -Wall -Wextra -Wpedantic -Werror -Wcast-qual -Wcast-align -Wconversion)
say "pkg-config --static against prefix-static"
pc=$work/prefix-static/lib/pkgconfig
# shellcheck disable=SC2046 # pkg-config's output is meant to be split
cc "${cflags[@]}" "$consumers/app.c" -o "$work/pc-static" \
    $(PKG_CONFIG_PATH=$pc pkg-config --cflags fut) $(PKG_CONFIG_PATH=$pc pkg-config --static --libs fut)
"$work/pc-static"
if grep libfut <<<"$(ldd "$work/pc-static")"; then echo "pc-static links libfut.so"; exit 1; fi

say "pkg-config (shared) against prefix-shared"
pc=$work/prefix-shared/lib/pkgconfig
libdir=$(PKG_CONFIG_PATH=$pc pkg-config --variable=libdir fut)
# shellcheck disable=SC2046
cc "${cflags[@]}" "$consumers/app.c" -o "$work/pc-shared" \
    $(PKG_CONFIG_PATH=$pc pkg-config --cflags --libs fut) -Wl,-rpath,"$libdir"
"$work/pc-shared"
grep -q "libfut.so.0 => $work/prefix-shared" <<<"$(ldd "$work/pc-shared")" ||
    { echo "pc-shared does not load prefix-shared's libfut.so.0"; exit 1; }

# fut as a subproject: the consumer's ctest lists only its own test, and the
# build makes nothing of fut's but the library.
check_subproject() {
    local b=$1 log=$2
    local tests
    tests=$(cd "$b" && ctest -N | sed -n 's/^ *Test *#[0-9]*: //p')
    if [[ $tests != app ]]; then
        echo "the consumer's ctest lists: $tests (expected only app)"; exit 1
    fi
    if grep -E "fut_tests|fut_bench|peer_|example_|/fut[^ ]*/(test|bench|examples)/" "$log"; then
        echo "the consumer's build compiled fut's tests, bench, peers or examples"; exit 1
    fi
    if grep -E "fut_tests|fut_bench|peer_|example_" <<<"$(cmake --build "$b" --target help)"; then
        echo "the consumer's build has targets for fut's tests, bench, peers or examples"; exit 1
    fi
    echo "ctest: only app; build: only libfut and app"
}

# 3. add_subdirectory
say "add_subdirectory(fut)"
b=$work/subdirectory
cmake -S "$consumers/subdirectory" -B "$b" "${gen[@]}" -DFUT_SOURCE_DIR="$src" -DFUT_WERROR=ON >/dev/null
cmake --build "$b" -j$jobs > "$b.log"
(cd "$b" && ctest --output-on-failure)
check_subproject "$b" "$b.log"

# 4. FetchContent
b=$work/fetchcontent
if git -C "$src" rev-parse --verify -q HEAD >/dev/null 2>&1; then
    head=$(git -C "$src" rev-parse HEAD)
    say "FetchContent from git $src at $head"
    if [[ -n $(git -C "$src" status --porcelain --untracked-files=no) ]]; then
        echo "(the checkout has uncommitted changes: FetchContent builds HEAD without them)"
    fi
    from=(-DFUT_GIT_REPOSITORY="$src" -DFUT_GIT_TAG="$head")
else
    say "FetchContent from the directory $src (not a git checkout)"
    from=(-DFUT_SOURCE_DIR="$src")
fi
cmake -S "$consumers/fetchcontent" -B "$b" "${gen[@]}" "${from[@]}" -DFUT_WERROR=ON >/dev/null
cmake --build "$b" -j$jobs > "$b.log"
(cd "$b" && ctest --output-on-failure)
check_subproject "$b" "$b.log"

# 5. a consumer's flags
for cc in gcc clang; do
    b=$work/flags-$cc
    if [[ $cc == gcc ]]; then
        flags="-fsanitize=thread -Wcast-qual -Wcast-align=strict"
        link=-fsanitize=thread
    else
        flags="-Wcast-qual -Wcast-align"
        link=
    fi
    say "add_subdirectory(fut) with CC=$cc CFLAGS=\"$flags\""
    CC=$cc cmake -S "$consumers/subdirectory" -B "$b" "${gen[@]}" -DFUT_SOURCE_DIR="$src" \
        -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$link" >/dev/null
    cmake --build "$b" -j$jobs > "$b.log" 2>&1 || { cat "$b.log"; exit 1; }
    echo "built; fut's warnings under these flags (file:line [flag]):"
    grep -oE "(lib|include)/[^: ]+:[0-9]+:[0-9]+: warning: .*\[-W[^]]+\]" "$b.log" |
        sed -E 's/:[0-9]+: warning: .*(\[-W[^]]+\])$/ \1/' | sort -u | sed 's/^/    /' || true
    TSAN_OPTIONS=halt_on_error=1 "$b/app"
done

say "all consumers built and ran"
