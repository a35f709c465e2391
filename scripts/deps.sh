#!/bin/sh
# Installs the Debian packages a make target needs, and nothing when they
# are already there (so repeated runs are fast and work offline).
#
#   scripts/deps.sh build|run|test|bench|asan|fuzz|deb ...

set -eu

pkgs=""
node=""
for set in "$@"; do
    case "$set" in
    build) pkgs="$pkgs gcc make nginx nginx-dev libyajl-dev libhiredis-dev
                 libpcre2-dev libssl-dev zlib1g-dev ca-certificates" ;;
    run)   pkgs="$pkgs libnginx-mod-http-js curl" ;;
    test)  pkgs="$pkgs libtest-base-perl libnginx-mod-http-echo
                 libnginx-mod-http-js redis-server curl procps
                 prometheus chromium"
           node=1 ;;
    bench) pkgs="$pkgs wrk libnginx-mod-http-echo libnginx-mod-http-js
                 curl procps"
           node=1 ;;
    asan)  pkgs="$pkgs valgrind" ;;
    deb)   pkgs="$pkgs build-essential debhelper dpkg-dev fakeroot lintian
                 nginx-dev libyajl-dev libhiredis-dev libpcre2-dev libssl-dev
                 zlib1g-dev" ;;
    fuzz)  pkgs="$pkgs clang-14 libfuzzer-14-dev curl libyajl-dev
                 libhiredis-dev libpcre2-dev libssl-dev zlib1g-dev" ;;
    *) echo "deps.sh: unknown set '$set'" >&2; exit 2 ;;
    esac
done

# Node.js may come from Debian or elsewhere (NodeSource ships npm inside
# its nodejs package): only a missing node or npm command asks for Debian's.
if [ -n "$node" ]; then
    command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
    command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
fi

missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null \
         | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done

[ -z "$missing" ] && exit 0

echo "Installing Debian packages:$missing"

sudo=""
if [ "$(id -u)" != 0 ]; then
    sudo="sudo"
fi

# Installing nginx must not start the system's nginx on port 80.
guard=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    guard=1
fi

export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends $missing

if [ -n "$guard" ]; then
    $sudo rm -f /usr/sbin/policy-rc.d
fi
