#!/usr/bin/env bash
# make install: estate-gateway as a system service.
#
#   PREFIX   where the virtualenv goes            (default /opt/estate-gateway)
#   DESTDIR  staging root for packaging; nothing outside it is touched, no user is created,
#            systemd is not called (the sysusers.d/tmpfiles.d files do that on the target)
#   PY       the python to build the venv with     (default python3, >= 3.11)
#   WHEEL    install this wheel instead of building one from the source tree
#   PIP_OPTS extra pip options, e.g. "--no-index --find-links /media/usb/wheelhouse" offline
#   EGW_SKIP_DEPS=1  install the wheel without its dependencies (staging tests only)
#   EGW_ID, EGW_SITE  gateway id and site written into a NEW default config (gw-1 / site-1)
#
# Lays out:
#   $PREFIX/                          venv with the estate-gateway wheel (bin/estate-gateway)
#   $PREFIX/share/estate-gateway/     example.toml, meter profiles, mosquitto examples, docs
#   /etc/estate-gateway/gateway.toml  default config, never overwritten if present
#   /etc/systemd/system/estate-gateway.service
#   /usr/lib/sysusers.d/estate-gateway.conf  system user estate-gateway, member of dialout
#   /usr/lib/tmpfiles.d/estate-gateway.conf  /var/lib/estate-gateway (0750)
#
# Upgrade = run it again: the venv gets the new wheel, the config is kept, and (on a live
# system) a backup of the database is taken before the service is restarted; the daemon then
# migrates the schema at start (after its own pre-migration backup). See docs/security.md.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)

PREFIX=${PREFIX:-/opt/estate-gateway}
DESTDIR=${DESTDIR:-}
PY=${PY:-python3}
ETC=/etc/estate-gateway
STATE=/var/lib/estate-gateway
UNIT_DIR=${UNIT_DIR:-/etc/systemd/system}
SVC_USER=estate-gateway

say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: %s\n' "$*" >&2; exit 1; }

live=0
[ -z "$DESTDIR" ] && live=1
if [ "$live" = 1 ] && [ "$(id -u)" != 0 ]; then
  die "installing into the live system needs root (or set DESTDIR=/some/staging/dir)"
fi

"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "$PY is older than Python 3.11"
case "$PREFIX" in /*) ;; *) die "PREFIX must be absolute (got $PREFIX)";; esac

# ---------------------------------------------------------------- the wheel
if [ -z "${WHEEL:-}" ]; then
  build=$(mktemp -d)
  trap 'rm -rf "$build"' EXIT
  say "building the wheel"
  # from a copy: an in-tree build would write build/ and *.egg-info into the checkout
  mkdir -p "$build/src"
  tar -C "$SRC" --exclude=./.venv --exclude=./var --exclude=./.git --exclude=./build --exclude=./dist \
      --exclude='*.egg-info' --exclude=__pycache__ --exclude=./tests --exclude=./bench -cf - . | tar -C "$build/src" -xf -
  "$PY" -m pip wheel --no-deps --quiet -w "$build" "$build/src" >/dev/null
  WHEEL=$(ls "$build"/estate_gateway-*.whl | head -n1)
fi
[ -f "$WHEEL" ] || die "no wheel at $WHEEL"
say "wheel $(basename "$WHEEL")"

# ---------------------------------------------------------------- the venv
VENV="$DESTDIR$PREFIX"
upgrade=0
[ -x "$VENV/bin/estate-gateway" ] && upgrade=1
if [ ! -x "$VENV/bin/python" ]; then
  say "creating the venv in $VENV"
  "$PY" -m venv "$VENV"
fi
deps=()
[ "${EGW_SKIP_DEPS:-0}" = 1 ] && deps=(--no-deps)
say "installing the wheel into $VENV${deps:+ (without dependencies)}"
# shellcheck disable=SC2086
"$VENV/bin/python" -m pip install --quiet --force-reinstall --no-deps "$WHEEL" ${PIP_OPTS:-}
if [ ${#deps[@]} = 0 ]; then
  # the versions the release was tested with (requirements.lock), when installing from the source tree
  lock=()
  [ -f "$SRC/requirements.lock" ] && lock=(-c "$SRC/requirements.lock")
  # shellcheck disable=SC2086
  "$VENV/bin/python" -m pip install --quiet "${lock[@]}" "$WHEEL" ${PIP_OPTS:-}
fi

if [ -n "$DESTDIR" ]; then
  # a venv is not relocatable: its scripts and pyvenv.cfg name the staging path; make them
  # name the final one (what dh-virtualenv and friends do)
  say "relocating the venv from $VENV to $PREFIX"
  grep -rlI --null -F "$VENV" "$VENV/bin" "$VENV/pyvenv.cfg" 2>/dev/null \
    | xargs -0 -r sed -i "s#$VENV#$PREFIX#g"
fi

# ---------------------------------------------------------------- shared files
SHARE="$VENV/share/estate-gateway"
install -d -m 0755 "$SHARE" "$SHARE/meters" "$SHARE/mosquitto" "$SHARE/docs"
install -m 0644 config/example.toml "$SHARE/example.toml"
install -m 0644 config/meters/*.toml "$SHARE/meters/"
install -m 0644 config/mosquitto/* "$SHARE/mosquitto/"
for f in README.md docs/*.md; do [ -f "$f" ] && install -m 0644 "$f" "$SHARE/docs/"; done
[ -f README.md ] && install -m 0644 README.md "$VENV/README.md"

# ---------------------------------------------------------------- systemd unit, user, state dir
install -d -m 0755 "$DESTDIR$UNIT_DIR" "$DESTDIR/usr/lib/sysusers.d" "$DESTDIR/usr/lib/tmpfiles.d"
sed "s#/opt/estate-gateway#$PREFIX#g" systemd/estate-gateway.service > "$DESTDIR$UNIT_DIR/estate-gateway.service"
chmod 0644 "$DESTDIR$UNIT_DIR/estate-gateway.service"
cat > "$DESTDIR/usr/lib/sysusers.d/estate-gateway.conf" <<EOF
# estate-gateway: the daemon's system user; serial readers and RS-485 buses need dialout
u $SVC_USER - "estate-gateway daemon" $STATE /usr/sbin/nologin
m $SVC_USER dialout
EOF
cat > "$DESTDIR/usr/lib/tmpfiles.d/estate-gateway.conf" <<EOF
# estate-gateway: database, backups (journald keeps the logs: nothing to rotate)
d $STATE 0750 $SVC_USER $SVC_USER -
d $STATE/backups 0750 $SVC_USER $SVC_USER -
EOF
chmod 0644 "$DESTDIR/usr/lib/sysusers.d/estate-gateway.conf" "$DESTDIR/usr/lib/tmpfiles.d/estate-gateway.conf"

# ---------------------------------------------------------------- site certificate (HTTPS), never overwritten
install -d -m 0750 "$DESTDIR$ETC"
TLS="$DESTDIR$ETC/tls"
if [ -s "$TLS/server.pem" ] && [ -s "$TLS/server.key" ]; then
  say "keeping the existing site certificate in $ETC/tls"
else
  say "making a site certificate in $ETC/tls (HTTPS for the console and API on the site network)"
  if "$VENV/bin/python" -m gateway.cli tls new --out "$TLS" --site "${EGW_SITE:-site-1}" >/dev/null; then
    say "phones and PCs trust the console once by installing $ETC/tls/site-ca.pem (see docs/security.md);"
    say "keep $ETC/tls/site-ca.key offline after that: it is only needed to renew the server certificate"
  else
    say "could not make a site certificate here: the console stays on 127.0.0.1 until you run"
    say "  $PREFIX/bin/estate-gateway tls new --out $ETC/tls   and set tls_cert_file/tls_key_file"
  fi
fi

# ---------------------------------------------------------------- default config (never overwritten)
install -d -m 0750 "$DESTDIR$ETC"
CONF="$DESTDIR$ETC/gateway.toml"
if [ -e "$CONF" ]; then
  say "keeping the existing $ETC/gateway.toml"
else
  say "writing a default $ETC/gateway.toml (edit it: id, site, mqtt, tokens, devices)"
  cat > "$CONF" <<EOF
# estate-gateway: this site's config. Every key is described in
# $PREFIX/share/estate-gateway/example.toml; validate with
#   $PREFIX/bin/estate-gateway check-config -c $ETC/gateway.toml
# No API tokens yet: make one with
#   $PREFIX/bin/estate-gateway token new --role admin --name site-admin
# and paste the lines it prints below.

[gateway]
id = "${EGW_ID:-gw-1}"
site = "${EGW_SITE:-site-1}"
data_dir = "$STATE"
timezone = "Asia/Shanghai"

[mqtt]
# mqtts://broker:8883 with ca_file (and username + password_file, or a client certificate)
url = "mqtt://127.0.0.1:1883"

EOF
  if [ -s "$TLS/server.pem" ]; then
    # HTTPS on the site network with the site certificate (phones trust $ETC/tls/site-ca.pem once)
    printf '[api]\nlisten = "0.0.0.0:8443"\ntls_cert_file = "%s"\ntls_key_file = "%s"\n' \
      "$ETC/tls/server.pem" "$ETC/tls/server.key" >> "$CONF"
  else
    printf '[api]\nlisten = "127.0.0.1:8080"\n' >> "$CONF"
  fi
  chmod 0640 "$CONF"
fi

# ---------------------------------------------------------------- the live system
if [ "$live" = 0 ]; then
  say "staged into $DESTDIR (user, state dir and service are created on the target by"
  say "systemd-sysusers / systemd-tmpfiles, e.g. from the package's postinst)"
  exit 0
fi

if ! id "$SVC_USER" >/dev/null 2>&1; then
  if command -v systemd-sysusers >/dev/null; then
    systemd-sysusers /usr/lib/sysusers.d/estate-gateway.conf
  else
    useradd --system --home-dir "$STATE" --shell /usr/sbin/nologin --user-group "$SVC_USER"
  fi
fi
getent group dialout >/dev/null && usermod -a -G dialout "$SVC_USER"
install -d -m 0750 -o "$SVC_USER" -g "$SVC_USER" "$STATE" "$STATE/backups"
chgrp "$SVC_USER" "$ETC" "$CONF" && chmod 0750 "$ETC"
if [ -f "$ETC/tls/server.key" ]; then
  chgrp "$SVC_USER" "$ETC/tls" "$ETC/tls/server.key" && chmod 0750 "$ETC/tls" && chmod 0640 "$ETC/tls/server.key"
fi

"$PREFIX/bin/estate-gateway" check-config -c "$CONF" || say "the config needs editing before the service can start"

if [ "$upgrade" = 1 ] && [ -s "$STATE/gateway.db" ]; then
  stamp=$(date +%Y%m%d-%H%M%S)
  say "upgrade: backing up the database first ($STATE/backups/pre-upgrade-$stamp.db)"
  runuser -u "$SVC_USER" -- "$PREFIX/bin/estate-gateway" backup -c "$CONF" --to "$STATE/backups/pre-upgrade-$stamp.db" \
    || die "backup failed; not restarting the service (the old version keeps running)"
fi

if [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  if systemctl is-active --quiet estate-gateway; then
    say "restarting estate-gateway (it migrates the database at start)"
    systemctl restart estate-gateway
  else
    say "enable and start it with: systemctl enable --now estate-gateway"
  fi
else
  say "systemd is not running here: start it with $PREFIX/bin/estate-gateway run -c $CONF"
fi
say "done"
