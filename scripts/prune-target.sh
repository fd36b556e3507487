#!/usr/bin/env bash
# Keeps the shared cargo target folder (~/.cache/concord/target) from filling
# the disk. Every clone builds the workspace's own crates under its own path,
# so each CI run adds a fresh copy of them (and their incremental caches) that
# nothing ever removes; after a few dozen runs the folder held 73 GB and the
# disk was full. Third-party crates are shared between clones and kept.
#
#   scripts/prune-target.sh     when the folder is over CONCORD_TARGET_LIMIT_GB
#                               (default 25): drop incremental caches, and the
#                               workspace's artifacts not touched for 3 hours.
set -euo pipefail
dir=${CARGO_TARGET_DIR:-$HOME/.cache/concord/target}
limit=${CONCORD_TARGET_LIMIT_GB:-25}
[ -d "$dir" ] || exit 0
used=$(du -s --block-size=1G "$dir" 2>/dev/null | cut -f1)
[ "$used" -gt "$limit" ] || exit 0
echo "prune-target: $dir holds ${used} GB (limit $limit): removing incremental caches and stale workspace artifacts"
rm -rf "$dir"/debug/incremental "$dir"/release/incremental
for profile in debug release; do
  [ -d "$dir/$profile/deps" ] || continue
  # The workspace's crates and test targets (their names as cargo writes them).
  find "$dir/$profile/deps" "$dir/$profile/.fingerprint" -maxdepth 1 -mmin +180 \
    \( -name 'concord*' -o -name 'libconcord*' -o -name 'it-*' -o -name 'fuzz-*' -o -name 'conformance_kit-*' \
       -o -name 'directory_vectors-*' -o -name 'evolution-*' -o -name 'vectors-*' \) \
    -exec rm -rf {} +
done
echo "prune-target: now $(du -s --block-size=1G "$dir" | cut -f1) GB"
