# shellcheck shell=bash disable=SC2034 # the variables are for the sourcing scripts
# Shared by tooling/image/*.sh (sourced, not run).
#
# buildah works on this machine only as root, with the vfs storage driver and
# chroot isolation: every buildah call goes through `bh`, which passes both.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export STORAGE_DRIVER=vfs
export BUILDAH_ISOLATION=chroot
export BUILDAH_LAYERS=${CAIXA_IMAGE_LAYERS:-false}

IMAGE_NAME=${CAIXA_IMAGE_NAME:-localhost/caixa}
IMAGE_CACHE=${CAIXA_IMAGE_CACHE:-/var/cache/caixa-image}
REF_FILE="$REPO/build/image-ref"

log() { printf '[image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

bh() { buildah --storage-driver vfs "$@"; }

# The tag: project version + git short sha (+ -dirty for uncommitted changes);
# never `latest`.
image_tag() {
    local version sha
    version=$(python3 -c 'import tomllib; print(tomllib.load(open("'"$REPO"'/services/pyproject.toml", "rb"))["project"]["version"])')
    sha=$(git -C "$REPO" rev-parse --short=12 HEAD 2>/dev/null || echo nogit)
    if [ -n "$(git -C "$REPO" status --porcelain 2>/dev/null)" ]; then
        sha="$sha-dirty"
    fi
    printf '%s-%s' "$version" "$sha"
}

# buildah, debootstrap (and what the check needs) from Debian's packages.
ensure_tools() {
    local missing=()
    command -v buildah >/dev/null || missing+=(buildah)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "need root to install ${missing[*]} (and buildah needs root here)"
    log "installing ${missing[*]} from Debian's packages"
    timeout 600 apt-get update -qq
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq "${missing[@]}" >/dev/null
}

check_disk() {
    local need_mb=$1 dir avail
    for dir in /var/lib/containers "$IMAGE_CACHE"; do
        mkdir -p "$dir"
        avail=$(df -Pm "$dir" | awk 'NR==2 {print $4}')
        [ "$avail" -ge "$need_mb" ] || die "only ${avail} MB free under $dir, need ${need_mb} MB"
    done
}
