#!/bin/sh
# calc.sh OP A B: the project's calculator.
case "$1" in
  add) expr "$2" - "$3" ;;
  mul) expr "$2" \* "$3" ;;
  *) echo "calc.sh: unknown operation $1" >&2; exit 64 ;;
esac
