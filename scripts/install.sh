#!/bin/sh
# Install brnet from a built checkout, as a copy that keeps working after the checkout is gone.
#
#   scripts/install.sh [--prefix DIR] [--destdir DIR] [--binary FILE] [--completion-from FILE]
#   scripts/install.sh --uninstall [--prefix DIR] [--destdir DIR]
#
# --prefix DIR            where it goes (default /usr/local)
# --destdir DIR           staging root, prepended to every path (like make's DESTDIR); files
#                         then land in DIR/PREFIX/..., and nothing outside DIR is touched
# --binary FILE           the executable to install (default dist/brnet of this checkout)
# --completion-from FILE  a brnet that runs on this machine, to print the completion scripts
#                         (default: --binary; give dist/brnet when --binary is another
#                         architecture's build)
# --uninstall             remove exactly the files an install with the same --prefix and
#                         --destdir creates, and print each one
#
# Files (PREFIX=/usr/local unless told otherwise):
#   PREFIX/bin/brnet
#   PREFIX/share/man/man1/brnet.1      (brnet.1.gz for /usr, which Debian policy wants
#                                       compressed; man-db reads either)
#   PREFIX/share/bash-completion/completions/brnet
#   PREFIX/share/zsh/site-functions/_brnet   (share/zsh/vendor-completions/_brnet for /usr:
#                                       Debian's zsh keeps site-functions for the local admin)
#   PREFIX/lib/systemd/system/*.service
# Units go to lib/systemd/system under every prefix, /usr included: systemd searches
# /usr/local/lib/systemd/system and /usr/lib/systemd/system (Debian 12's also /lib/systemd/system,
# the same directory on a merged-/usr system). /usr/lib is where Debian 13 and later put units,
# and a package should not move a file between /lib and /usr/lib in a later version (dpkg sees
# two paths of one file and may delete it).
#
# Needs only a POSIX shell and coreutils: no Node, no network. The binary is copied byte for
# byte and never stripped: strip removes the application a Bun executable carries at its end,
# leaving a plain Bun.
set -eu

me=install.sh
usage() {
    echo "usage: $me [--prefix DIR] [--destdir DIR] [--binary FILE] [--completion-from FILE] [--uninstall]" >&2
    exit 2
}
die() { # one line, then the exit status given
    echo "$me: $2" >&2
    exit "$1"
}

here=$(cd -- "$(dirname -- "$0")" && pwd)
root=${here%/*}

prefix=/usr/local
destdir=
binary=
completion_from=
uninstall=false
while [ $# -gt 0 ]; do
    case $1 in
        --prefix|--destdir|--binary|--completion-from)
            [ $# -ge 2 ] || usage
            case $1 in
                --prefix) prefix=$2 ;;
                --destdir) destdir=$2 ;;
                --binary) binary=$2 ;;
                --completion-from) completion_from=$2 ;;
            esac
            shift 2 ;;
        --prefix=*) prefix=${1#*=}; shift ;;
        --destdir=*) destdir=${1#*=}; shift ;;
        --binary=*) binary=${1#*=}; shift ;;
        --completion-from=*) completion_from=${1#*=}; shift ;;
        --uninstall) uninstall=true; shift ;;
        -h|--help) sed -n '2,/^set -eu/p' "$0" | sed '$d;s/^# \{0,1\}//'; exit 0 ;;
        *) usage ;;
    esac
done

case $prefix in
    /*) ;;
    *) die 2 "--prefix must be an absolute path: $prefix" ;;
esac
prefix=${prefix%/}
[ -n "$prefix" ] || die 2 "--prefix / is not supported: use /usr"
if [ -n "$destdir" ]; then
    case $destdir in
        /*) ;;
        *) destdir=$(pwd)/$destdir ;;
    esac
    destdir=${destdir%/}
fi

if [ "$prefix" = /usr ]; then
    man=share/man/man1/brnet.1.gz
    zsh=share/zsh/vendor-completions/_brnet
else
    man=share/man/man1/brnet.1
    zsh=share/zsh/site-functions/_brnet
fi
bash=share/bash-completion/completions/brnet
unitdir=lib/systemd/system
units=
for u in "$root"/contrib/*.service; do
    [ -f "$u" ] && units="$units ${u##*/}"
done

# Run systemctl only for the live system: never for a staging root, nor where systemd is not
# the running init (a container, a chroot), where it would fail or talk to the wrong manager.
live_systemd() {
    [ -z "$destdir" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

if $uninstall; then
    for f in bin/brnet "$man" "$bash" "$zsh"; do
        set -- "$@" "$destdir$prefix/$f"
    done
    for u in $units; do
        set -- "$@" "$destdir$prefix/$unitdir/$u"
    done
    enabled=
    for u in $units; do
        if live_systemd && systemctl is-enabled --quiet "$u" 2>/dev/null; then enabled="$enabled $u"; fi
    done
    for f in "$@"; do
        if [ -e "$f" ] || [ -L "$f" ]; then
            rm -f -- "$f"
            echo "removed $f"
        fi
    done
    if live_systemd; then
        systemctl daemon-reload >/dev/null 2>&1 || true
    fi
    for u in $enabled; do
        echo "$me: $u was enabled: run \`systemctl disable $u\` to remove its links" >&2
    done
    exit 0
fi

# Everything is checked and generated before the first file is written, so that a refusal
# leaves an existing installation as it was.
if [ -z "$binary" ]; then
    binary=$root/dist/brnet
    [ -f "$binary" ] || die 5 "$binary not found: run npm run build first"
else
    [ -f "$binary" ] || die 5 "$binary not found (run npm run build first, or give --binary FILE)"
fi
[ -n "$completion_from" ] || completion_from=$binary
[ -f "$completion_from" ] || die 5 "$completion_from not found: --completion-from needs a brnet that runs here"
[ -f "$root/man/brnet.1" ] || die 5 "$root/man/brnet.1 not found: is $root a brnet checkout?"

umask 022
tmp=$(mktemp -d "${TMPDIR:-/tmp}/brnet-install.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

case $completion_from in
    */*) run=$completion_from ;;
    *) run=./$completion_from ;;
esac
for shell in bash zsh; do
    # An empty environment for the variables brnet reads, so that the scripts do not depend
    # on the caller's settings.
    if ! env -u BRNET_STATE_DIR -u BRNET_DEBUG NO_COLOR=1 "$run" completion "$shell" >"$tmp/$shell" 2>"$tmp/err" || [ ! -s "$tmp/$shell" ]; then
        die 5 "$completion_from cannot print the $shell completion here ($(head -n 1 "$tmp/err")): give --completion-from with a brnet built for this machine"
    fi
done
if [ "$prefix" = /usr ]; then
    gzip -9n <"$root/man/brnet.1" >"$tmp/man"
else
    cp -- "$root/man/brnet.1" "$tmp/man"
fi

# Each file is written next to its destination and renamed over it: a brnet running at that
# moment keeps its old inode, and a reader never sees half a file.
put() { # MODE SOURCE RELATIVE-DESTINATION
    dest=$destdir$prefix/$3
    mkdir -p -- "${dest%/*}"
    cp -- "$2" "$dest.new.$$"
    chmod "$1" "$dest.new.$$"
    mv -f -- "$dest.new.$$" "$dest"
    echo "installed $dest"
}
put 0755 "$binary" bin/brnet
put 0644 "$tmp/man" "$man"
put 0644 "$tmp/bash" "$bash"
put 0644 "$tmp/zsh" "$zsh"
for u in $units; do
    put 0644 "$root/contrib/$u" "$unitdir/$u"
done
cmp -s -- "$binary" "$destdir$prefix/bin/brnet" || die 1 "$destdir$prefix/bin/brnet differs from $binary after copying"

if live_systemd; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
