#!/bin/sh
# PostgreSQL backup with retention: one compressed custom-format dump per run.
#
#   DATABASE_URL=postgresql://cdb@127.0.0.1:5432/claire_de_binaire scripts/backup.sh
#   docker compose -f docker-compose.yml run --rm backup      # the same, in compose
#
# POSIX sh (runs in the postgres:15-alpine image too); needs pg_dump and pg_restore of
# the server's major version or newer.
#
# Environment:
#   DATABASE_URL  postgresql://user[:password]@host[:port]/dbname[?params]; the SQLAlchemy
#                 form postgresql+psycopg:// works too. Without it the libpq variables
#                 are used (PGHOST, PGPORT, PGUSER, PGDATABASE ...): PGDATABASE must be set.
#   password      from the URL, else PGPASSWORD, else POSTGRES_PASSWORD (as the app fills
#                 it in), else ~/.pgpass. Handed to pg_dump in its environment, never on
#                 its command line, and never printed.
#   BACKUP_DIR    where the dumps go (default ./backups; created)
#   BACKUP_KEEP   how many dumps of this database to keep, newest first (default 7; 1..1000)
#   BACKUP_STAMP  the dump's timestamp (default: now, UTC, YYYYmmddTHHMMSSZ); letters,
#                 digits and '-' only. Dumps sort by it: newest = greatest stamp.
#
# Writes BACKUP_DIR/<dbname>_<stamp>.dump (mode 600), checks that pg_restore can read it,
# then deletes the oldest <dbname>_*.dump beyond BACKUP_KEEP. Prints the new file's path
# on stdout, progress on stderr. On any error: a message on stderr, exit status 1, no
# partial file left behind and no old dump deleted.
#
# Restore (pg_restore):
#   pg_restore --list backups/claire_de_binaire_20250101T030000Z.dump    # what a dump holds
#   1. Stop what writes to the database:
#        docker compose -f docker-compose.yml stop web beat flower \
#            worker-market-data worker-signals worker-risk worker-execution
#   2. Restore into the existing database (--clean drops and recreates its objects; in a
#      fresh, empty database made with createdb leave out --clean --if-exists):
#        PGPASSWORD=... pg_restore --dbname=postgresql://cdb@HOST:5432/claire_de_binaire \
#            --clean --if-exists --no-owner --single-transaction FILE.dump
#      or in compose, for a dump in ./backups:
#        docker compose -f docker-compose.yml run --rm backup sh -c 'pg_restore \
#            --dbname="$DATABASE_URL" --clean --if-exists --no-owner --single-transaction \
#            /backups/FILE.dump'
#   3. docker compose -f docker-compose.yml up -d   (migrate brings an older schema up to date)
#
# Daily at 03:00 from the host's crontab, for example:
#   0 3 * * * cd /srv/claire-de-binaire && docker compose -f docker-compose.yml run --rm backup

set -eu
umask 077
LC_ALL=C
export LC_ALL

die() {
    printf 'backup: error: %s\n' "$*" >&2
    exit 1
}

say() {
    printf 'backup: %s\n' "$*" >&2
}

# Percent-decoding (the URL's password may hold %40 for '@' and the like).
urldecode() {
    printf '%s' "$1" | awk '
        BEGIN { for (i = 0; i < 256; i++) byte[sprintf("%02X", i)] = i }
        {
            out = ""
            while (match($0, /%[0-9A-Fa-f][0-9A-Fa-f]/)) {
                out = out substr($0, 1, RSTART - 1) sprintf("%c", byte[toupper(substr($0, RSTART + 1, 2))])
                $0 = substr($0, RSTART + 3)
            }
            printf "%s", out $0
        }'
}

BACKUP_DIR=${BACKUP_DIR:-./backups}
BACKUP_KEEP=${BACKUP_KEEP:-7}
case $BACKUP_KEEP in
    '' | *[!0-9]*) die "BACKUP_KEEP must be a whole number from 1 to 1000, not '$BACKUP_KEEP'" ;;
esac
if [ "$BACKUP_KEEP" -lt 1 ] || [ "$BACKUP_KEEP" -gt 1000 ]; then
    die "BACKUP_KEEP must be a whole number from 1 to 1000, not '$BACKUP_KEEP'"
fi
stamp=${BACKUP_STAMP:-$(date -u +%Y%m%dT%H%M%SZ)}
case $stamp in
    '' | *[!0-9A-Za-z-]*) die "BACKUP_STAMP may hold only letters, digits and '-', not '$stamp'" ;;
esac

command -v pg_dump >/dev/null 2>&1 || die "pg_dump not found: install the PostgreSQL client"
command -v pg_restore >/dev/null 2>&1 || die "pg_restore not found: install the PostgreSQL client"

# --- what to back up --------------------------------------------------------------
conninfo=
url=${DATABASE_URL:-}
if [ -n "$url" ]; then
    case $url in
        postgresql+*://*) url="postgresql://${url#*://}" ;;  # SQLAlchemy's driver suffix
        postgresql://* | postgres://*) ;;
        *) die "DATABASE_URL is not a postgresql:// URL (this script backs up PostgreSQL only)" ;;
    esac
    rest=${url#*://}
    authority=${rest%%/*}
    path=${rest#"$authority"}
    case $authority in
        *@*) userinfo=${authority%@*} hostport=${authority##*@} ;;
        *) userinfo='' hostport=$authority ;;
    esac
    case $userinfo in
        *:*) user=${userinfo%%:*} password=${userinfo#*:} ;;
        *) user=$userinfo password='' ;;
    esac
    dbname=${path#/}
    dbname=${dbname%%\?*}
    [ -n "$dbname" ] || die "DATABASE_URL names no database (postgresql://user@host:5432/DBNAME)"
    # The URL pg_dump gets has no password in it: that goes through PGPASSWORD.
    conninfo="postgresql://${user:+$user@}$hostport$path"
    shown="postgresql://${user:+$user@}$hostport/$dbname"
    if [ -n "$password" ]; then
        PGPASSWORD=$(urldecode "$password")
        export PGPASSWORD
    fi
elif [ -n "${PGDATABASE:-}" ]; then
    dbname=$PGDATABASE
    shown="${PGUSER:+$PGUSER@}${PGHOST:-local socket}:${PGPORT:-5432}/$dbname (PG* variables)"
else
    die "DATABASE_URL is not set (nor PGDATABASE): say which database to back up, e.g. DATABASE_URL=postgresql://cdb@127.0.0.1:5432/claire_de_binaire"
fi
if [ -z "${PGPASSWORD:-}" ] && [ -n "${POSTGRES_PASSWORD:-}" ]; then
    PGPASSWORD=$POSTGRES_PASSWORD
    export PGPASSWORD
fi

prefix=$(printf '%s' "$dbname" | tr -c 'A-Za-z0-9_.-' '_')
mkdir -p -- "$BACKUP_DIR" 2>/dev/null || die "cannot create BACKUP_DIR '$BACKUP_DIR'"
if [ ! -d "$BACKUP_DIR" ] || [ ! -w "$BACKUP_DIR" ]; then
    die "BACKUP_DIR '$BACKUP_DIR' is not a writable folder"
fi
final="$BACKUP_DIR/${prefix}_$stamp.dump"
partial="$BACKUP_DIR/.${prefix}_$stamp.dump.partial"
[ ! -e "$final" ] || die "$final already exists (same BACKUP_STAMP twice?)"

# --- dump ---------------------------------------------------------------------------
trap 'rm -f -- "$partial"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "dumping $shown to $final"
# --no-password: fail instead of waiting for a prompt (cron has no terminal).
if ! pg_dump --format=custom --compress=6 --no-password --file="$partial" \
    ${conninfo:+"--dbname=$conninfo"}; then
    die "pg_dump failed for $shown (its message is above); no backup written, none deleted"
fi
if ! pg_restore --list -- "$partial" >/dev/null; then
    die "the dump of $shown cannot be read back by pg_restore; no backup written, none deleted"
fi
mv -f -- "$partial" "$final"
say "wrote $final ($(wc -c <"$final" | tr -d ' ') bytes)"

# --- retention ------------------------------------------------------------------------
# This database's dumps only: <prefix>_<stamp>.dump, where a stamp holds no '_'. The
# glob sorts by name (LC_ALL=C), that is oldest stamp first.
is_ours() {
    case $1 in
        *.partial) return 1 ;;
    esac
    stamp_part=${1#"$BACKUP_DIR/${prefix}_"}
    stamp_part=${stamp_part%.dump}
    case $stamp_part in
        '' | *_* | */*) return 1 ;;
    esac
    [ -f "$1" ]
}
count=0
for file in "$BACKUP_DIR/${prefix}"_*.dump; do
    if is_ours "$file"; then count=$((count + 1)); fi
done
excess=$((count - BACKUP_KEEP))
for file in "$BACKUP_DIR/${prefix}"_*.dump; do
    [ "$excess" -gt 0 ] || break
    if is_ours "$file"; then
        rm -f -- "$file" || die "cannot delete the old backup $file"
        say "deleted old backup $file"
        excess=$((excess - 1))
    fi
done
say "keeping the newest $BACKUP_KEEP backup(s) of $dbname in $BACKUP_DIR"
printf '%s\n' "$final"
