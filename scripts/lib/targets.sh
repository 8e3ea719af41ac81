# Sourced by check-static.sh and bench-size.sh: how to run each target's binary on this machine,
# and a veth pair between two namespaces to probe through (198.18.250.0/30, created and deleted
# by the caller; nothing outside them is ever probed).

# The command prefix that runs a target's binary here: nothing natively, qemu-user otherwise.
runner() {
    case "$1" in
    x86_64-*) echo "" ;;
    aarch64-*) echo "qemu-aarch64-static" ;;
    armv7-*) echo "qemu-arm-static -cpu cortex-a7" ;;
    armv5te-*) echo "qemu-arm-static -cpu arm926" ;;   # the EN7562CT class: ARMv5TE, no VFP
    esac
}

# The image tar of a target, as scripts/build-images.sh names it.
image_of() {
    case "$1" in
    x86_64-*) echo out/uplinkd-amd64.tar ;;
    aarch64-*) echo out/uplinkd-arm64.tar ;;
    armv7-*) echo out/uplinkd-armv7.tar ;;
    armv5te-*) echo out/uplinkd-armv5.tar ;;
    esac
}

PAIR_NS=uplinkd-pair-$$
PAIR_LOCAL=198.18.250.2
PAIR_PEER=198.18.250.1
PAIR_DEV=vt-a

pair_down() { ip netns del "$PAIR_NS-a" 2>/dev/null || true; ip netns del "$PAIR_NS-b" 2>/dev/null || true; }

# Two namespaces joined by a veth: run the binary in "$PAIR_NS-a" and probe $PAIR_PEER through
# $PAIR_DEV from $PAIR_LOCAL, as it probes through a WAN's veth.
pair_up() {
    pair_down
    ip netns add "$PAIR_NS-a" && ip netns add "$PAIR_NS-b"
    ip -n "$PAIR_NS-a" link add name "$PAIR_DEV" type veth peer name vt-b netns "$PAIR_NS-b"
    ip -n "$PAIR_NS-a" addr add "$PAIR_LOCAL/30" dev "$PAIR_DEV"
    ip -n "$PAIR_NS-b" addr add "$PAIR_PEER/30" dev vt-b
    ip -n "$PAIR_NS-a" link set "$PAIR_DEV" up && ip -n "$PAIR_NS-b" link set vt-b up
    ip -n "$PAIR_NS-a" link set lo up
}
