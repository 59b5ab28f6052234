# Sourced by the build scripts here: where their outputs live and how they are made without races.
# Outputs go under $VMDUMP_TEST_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/vmdump-test-guests),
# outside any checkout, so a clean clone on a machine that has run the tests before reuses them
# (the Linux guests and debug vmlinux files are over 1 GB of downloads). Each output folder is
# named by what it is built from (a kernel package, a hash of the sources); it is built in a
# temporary folder beside it while holding a lock, and renamed into place whole, so two test
# workers never see half an output. Every script prints its output folder as its last line.
cache_root=${VMDUMP_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vmdump-test-guests}
mkdir -p "$cache_root"

# hold_lock NAME: an exclusive lock on NAME until the script exits
hold_lock() { exec 9>"$cache_root/.$1.lock"; flock 9; }

# new_build: a fresh temporary folder in the cache (same file system as the destination)
new_build() { mktemp -d "$cache_root/.build-XXXXXX"; }

# publish BUILD DEST: the finished build becomes DEST (callers hold DEST's lock)
publish() { rm -rf "$2"; mv "$1" "$2"; }
