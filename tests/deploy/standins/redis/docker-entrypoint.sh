#!/bin/sh
# As the official redis image's entrypoint: options alone mean redis-server; started as root, it
# takes /data and drops to the redis user; without a config file, protected mode is off (the
# server is reached through the container network, never published by default).
set -e

case "$1" in
  -*) set -- redis-server "$@" ;;
esac

if [ "$1" = redis-server ]; then
  case "${2:-}" in
    *.conf) ;;
    *)
      case " $* " in
        *" --protected-mode "*) ;;
        *) set -- "$@" --protected-mode no ;;
      esac
      ;;
  esac
  if [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis:redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi
exec "$@"
