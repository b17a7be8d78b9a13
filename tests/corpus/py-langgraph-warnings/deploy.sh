#!/bin/bash
set -e
rm -rf $TARGET/tmp
cp build.tar.gz /srv
cd /srv
tar xf build.tar.gz
