#!/bin/sh
echo "hello from $(cat /etc/quickstart/app-arch)"
