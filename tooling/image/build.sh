#!/usr/bin/env bash
# Build the Caixa image with buildah (no Docker engine, no registry here).
#
#  1. base: a minbase debootstrap of Debian bookworm with python3 + venv,
#     cached as a tarball under $CAIXA_IMAGE_CACHE (default
#     /var/cache/caixa-image) and committed as localhost/caixa-base:bookworm-KEY,
#     KEY being a hash of the debootstrap command; both are reused while the
#     command is unchanged. CAIXA_IMAGE_REFRESH_BASE=1 rebuilds them (newer
#     Debian packages).
#  2. the Dockerfile, FROM that base (BASE_IMAGE build arg). No layer cache by
#     default: with vfs every cached step copies the whole rootfs, so a no-op
#     --layers build took 118s against 52s for a full build here
#     (CAIXA_IMAGE_LAYERS=true turns it on).
#  3. tag localhost/caixa:VERSION-SHA (never latest), written to build/image-ref.
#
# Real users build the same Dockerfile with its default base,
# python:3.11-slim-bookworm (see README, "Container image").
set -euo pipefail
# shellcheck source=tooling/image/lib.sh
source "$(dirname "$0")/lib.sh"

SUITE=bookworm
# shellcheck disable=SC2054 # --include takes a comma-separated list
DEBOOTSTRAP_ARGS=(--variant=minbase --include=python3,python3-venv,ca-certificates "$SUITE")
MIRROR=${CAIXA_DEBIAN_MIRROR:-} # empty: debootstrap's default Debian mirror
# Bump when the post-processing below changes: that changes the key too.
BASE_RECIPE=1

ensure_tools
check_disk 6000
[ "$(id -u)" = 0 ] || die "buildah runs only as root on this machine"

key=$(printf '%s\n' "$BASE_RECIPE" "${DEBOOTSTRAP_ARGS[*]}" "$MIRROR" | sha256sum | cut -c1-12)
BASE_REF="localhost/caixa-base:$SUITE-$key"
tarball="$IMAGE_CACHE/base-$SUITE-$key.tar"
mkdir -p "$IMAGE_CACHE" "$REPO/build"

work=""
base_ctr=""
cleanup() {
    if [ -n "$base_ctr" ]; then
        bh umount "$base_ctr" >/dev/null 2>&1 || true
        bh rm "$base_ctr" >/dev/null 2>&1 || true
    fi
    if [ -n "$work" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT

if [ "${CAIXA_IMAGE_REFRESH_BASE:-0}" = 1 ]; then
    log "refreshing the base: dropping $tarball and $BASE_REF"
    rm -f "$tarball"
    bh rmi "$BASE_REF" >/dev/null 2>&1 || true
fi

t0=$(date +%s)
if bh inspect --type image "$BASE_REF" >/dev/null 2>&1; then
    log "base: reusing $BASE_REF"
else
    if [ -s "$tarball" ]; then
        log "base: reusing the cached rootfs $tarball"
    else
        work=$(mktemp -d "$IMAGE_CACHE/rootfs.XXXXXX")
        log "base: debootstrap ${DEBOOTSTRAP_ARGS[*]} ${MIRROR} (log: $work/debootstrap.log)"
        # shellcheck disable=SC2086 # MIRROR is one word or none
        if ! timeout 1200 debootstrap "${DEBOOTSTRAP_ARGS[@]}" "$work/rootfs" $MIRROR \
            >"$work/debootstrap.log" 2>&1; then
            tail -n 40 "$work/debootstrap.log" >&2
            die "debootstrap failed"
        fi
        # Package caches, device nodes (the runtime provides /dev) and this
        # machine's identity stay out of the image.
        rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/* \
            "$work"/rootfs/dev/* "$work"/rootfs/var/log/* "$work"/rootfs/tmp/*
        rm -f "$work/rootfs/etc/hostname" "$work/rootfs/etc/resolv.conf"
        tar -C "$work/rootfs" --numeric-owner -cf "$tarball.part" .
        mv "$tarball.part" "$tarball"
        rm -rf "$work"
        work=""
    fi
    log "base: committing $BASE_REF"
    base_ctr=$(bh from --isolation chroot scratch)
    mnt=$(bh mount "$base_ctr")
    tar -C "$mnt" --numeric-owner -xpf "$tarball"
    bh umount "$base_ctr" >/dev/null
    bh config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env LANG=C.UTF-8 --cmd /bin/bash \
        --label org.opencontainers.image.description="debootstrap ${DEBOOTSTRAP_ARGS[*]}" \
        "$base_ctr"
    bh commit --quiet --rm "$base_ctr" "$BASE_REF" >/dev/null
    base_ctr=""
fi
log "base ready in $(($(date +%s) - t0))s"

TAG=$(image_tag)
REF="$IMAGE_NAME:$TAG"
VCS_REF=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)
VERSION=${TAG%%-*}
t1=$(date +%s)
log "building $REF FROM $BASE_REF"
# pip in the build reaches PyPI directly; where TLS is intercepted (as here)
# it needs the host's CA bundle, passed as a build secret (never in a layer).
# Nothing else of the host's pip config (indexes, find-links, constraints) is used.
ca_bundle=${CAIXA_IMAGE_CA_BUNDLE:-${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}}
secret_args=()
if [ -s "$ca_bundle" ]; then
    secret_args=(--secret "id=ca_bundle,src=$ca_bundle")
fi
prev_id=$(bh images --noheading --no-trunc --format '{{.ID}}' "$REF" 2>/dev/null | head -n 1 || true)
iidfile=$(mktemp)
timeout 2400 buildah --storage-driver vfs build --isolation chroot --layers="$BUILDAH_LAYERS" --pull=never --force-rm \
    --network host "${secret_args[@]}" \
    --build-arg "BASE_IMAGE=$BASE_REF" \
    --build-arg "VERSION=$VERSION" \
    --build-arg "VCS_REF=$VCS_REF" \
    --iidfile "$iidfile" \
    -t "$REF" -f "$REPO/Dockerfile" "$REPO"
image_id=$(cat "$iidfile")
rm -f "$iidfile"
log "built in $(($(date +%s) - t1))s"

# A rebuild of the same tag (uncommitted changes) leaves the previous image
# untagged: drop it.
if [ -n "$prev_id" ] && [ "${prev_id#sha256:}" != "${image_id#sha256:}" ]; then
    bh rmi "${prev_id#sha256:}" >/dev/null 2>&1 || true
fi

# Older tags of this image are dropped (vfs stores every layer in full).
while read -r old; do
    if [ "$old" != "$REF" ]; then
        log "removing the older tag $old"
        bh rmi "$old" >/dev/null || true
    fi
done < <(bh images --noheading --format '{{.Name}}:{{.Tag}}' --filter "reference=$IMAGE_NAME" | sort -u)

printf '%s\n' "$REF" >"$REF_FILE"
digest=$(bh images --noheading --digests --format '{{.Digest}}' "$REF" | head -n 1)
size=$(bh images --noheading --format '{{.Size}}' "$REF" | head -n 1)
echo "image: $REF"
echo "id: $image_id"
echo "digest: $digest"
echo "size: $size"
