#!/usr/bin/env bash
# Tools the firmware tests need (called by .ci/run; also the manual install steps in firmware/README.md).
# - qemu-system-arm: runs the firmware on mps2-an386 (tests/tests/qemu_*.rs)
# - flip-link: the firmware's linker wrapper (firmware/.cargo/config.toml)
# - thumbv7em-none-eabihf + llvm-tools: the Cortex-M target and llvm-size for the size records
set -euo pipefail
if ! command -v qemu-system-arm >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq qemu-system-arm >/dev/null
fi
if ! command -v flip-link >/dev/null 2>&1; then
  cargo install --locked flip-link
fi
rustup target add thumbv7em-none-eabihf >/dev/null
rustup component add llvm-tools >/dev/null
