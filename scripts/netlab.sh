#!/usr/bin/env bash
# netlab.sh: a network-namespace lab of a RouterOS router with two (or more) ISPs, for uplinkd's
# probing tests and benchmarks, runnable by a person. Needs root, iproute2 and nftables.
# Addresses only from 198.18.0.0/15, only inside the namespaces this script creates.
#
#   netlab.sh up LAB [--topology veth|shared] [--wans N] [--ctr-rp-filter 0|1|2] [--mgmt]
#   netlab.sh down LAB
#   netlab.sh fault LAB WAN blackhole|down|unreachable|loss PCT|delay MS [JITTER_MS]|clear
#   netlab.sh latency LAB WAN MS [JITTER_MS]  (a standing delay on WAN's ISP -> internet link;
#                                             faults do not clear it; MS 0 removes it)
#   netlab.sh monitor LAB IP down|up          (one monitor unreachable over every WAN)
#   netlab.sh exec LAB ctr|rtr|ispN|inet CMD...
#   netlab.sh verify LAB                      (ping every monitor through every WAN)
#   netlab.sh info LAB
#
# Namespaces: LAB-ctr (the container: a veth per WAN, or one veth with an address per WAN),
# LAB-rtr (the router: what uplinkd's install script does on RouterOS: a table per WAN with a
# default route via that WAN and nothing else, a rule by veth or source address, masquerade),
# LAB-ispN (one per WAN) and LAB-inet (the monitors 198.18.100.1-3 on lo).
#
# Addresses (WAN n = 1..N):
#   container <-> router, veth topology:  ctr uplinkd-wanN 198.18.N.2/30, rtr ctr-wanN 198.18.N.1/30
#   container <-> router, shared veth:    ctr uplinkd-veth 198.18.9.(N+1)/29, rtr ctr-veth 198.18.9.1/29
#   router <-> ISP n:                     rtr ispN 198.18.(10+N).2/30, isp rtr 198.18.(10+N).1/30
#   ISP n <-> internet:                   isp inet 198.18.(20+N).1/30, inet ispN 198.18.(20+N).2/30
#   monitors:                             198.18.100.1, 198.18.100.2, 198.18.100.3 on inet lo
#   management veth (--mgmt):             ctr uplinkd-mgmt 198.18.250.2/30, rtr ctr-mgmt 198.18.250.1/30
#   services (--mgmt):                    198.18.100.25 on inet lo (servers a test starts there)
#
# --mgmt adds the container's management path of the install script (its uplinkd-mgmt veth,
# 172.31.254.0/30 on a real router; here 198.18.250.0/30, as the lab uses 198.18.0.0/15 only):
# the container's default route goes via it instead of via the first WAN veth, no router rule
# pins it, so its traffic follows the router's main table (whose default route the caller moves
# between the ISPs, as RouterOS's FIB follows the routes uplinkd switches) and is masqueraded
# out of whichever ISP that is. The router end runs a DNS responder (netlab-dns.py) answering
# smtp.example and hooks.example with 198.18.100.25 (queries logged to /run/netns/.LAB.dns.log),
# and the container's resolv.conf points at it (/etc/netns/LAB-ctr/resolv.conf, which
# `ip netns exec` mounts over /etc/resolv.conf), as RouterOS's container `dns=` is meant to.
# Faults act in LAB-ispN on the link from the router (blackhole, loss, delay), on the router's
# link (down), or as the ISP answering "net unreachable" (unreachable).
# -E: the ERR trap of `up` (tear down a half-built lab) also fires inside the functions it calls.
set -Eeuo pipefail

MONITORS=(198.18.100.1 198.18.100.2 198.18.100.3)
NFT_FAULT_TABLE=uplab_fault
DELAY_HELPER=${NETLAB_DELAY_HELPER:-$(dirname "$(readlink -f "$0")")/nfq-delay.py}
DNS_HELPER=${NETLAB_DNS_HELPER:-$(dirname "$(readlink -f "$0")")/netlab-dns.py}
SERVICES=198.18.100.25
SERVICE_NAMES=(smtp.example hooks.example)
MGMT_ROUTER=198.18.250.1
MGMT_CONTAINER=198.18.250.2

die() { echo "netlab: $*" >&2; exit 1; }
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
sysctl_ns() { nsx "$1" sysctl -qw "$2=$3" >/dev/null; }

wans_of() { cat "/run/netns/.$1.wans" 2>/dev/null || echo 2; }
topology_of() { cat "/run/netns/.$1.topology" 2>/dev/null || echo veth; }

cmd_up() {
  local lab=$1; shift
  local topology=veth wans=2 ctr_rp=1 mgmt=no
  while [ $# -gt 0 ]; do
    case $1 in
      --topology) topology=$2; shift 2 ;;
      --wans) wans=$2; shift 2 ;;
      --ctr-rp-filter) ctr_rp=$2; shift 2 ;;
      --mgmt) mgmt=yes; shift ;;
      *) die "unknown option $1" ;;
    esac
  done
  case $topology in veth|shared) ;; *) die "topology must be veth or shared" ;; esac
  [ "$wans" -ge 1 ] && [ "$wans" -le 8 ] || die "--wans must be 1..8"
  ls /run/netns 2>/dev/null | grep -q "^$lab-" && die "lab $lab exists (run: netlab.sh down $lab)"
  if [ "$mgmt" = yes ]; then
    [ -r "$DNS_HELPER" ] || die "--mgmt needs the DNS responder $DNS_HELPER"
    command -v python3 >/dev/null || die "--mgmt needs python3 (the DNS responder)"
  fi

  local ctr=$lab-ctr rtr=$lab-rtr inet=$lab-inet
  # Creation is not atomic: whatever fails, tear down what exists.
  trap 'cmd_down "$lab" >/dev/null 2>&1 || true' ERR
  for ns in "$ctr" "$rtr" "$inet"; do ip netns add "$ns"; done
  for n in $(seq 1 "$wans"); do ip netns add "$lab-isp$n"; done
  echo "$wans" >"/run/netns/.$lab.wans"
  echo "$topology" >"/run/netns/.$lab.topology"

  # Namespaces copy rp_filter from the host: set every value explicitly (netlab-notes.md).
  for ns in "$ctr" "$rtr" "$inet" $(for n in $(seq 1 "$wans"); do echo "$lab-isp$n"; done); do
    ip -n "$ns" link set lo up
    sysctl_ns "$ns" net.ipv4.conf.all.rp_filter 0
    sysctl_ns "$ns" net.ipv4.conf.default.rp_filter 0
  done
  # The container: strict by default, the worst case the daemon's source rules must survive.
  sysctl_ns "$ctr" net.ipv4.conf.all.rp_filter "$ctr_rp"
  sysctl_ns "$ctr" net.ipv4.conf.default.rp_filter "$ctr_rp"
  # The router: loose, as the base config sets it. The ISPs: strict (BCP 38).
  sysctl_ns "$rtr" net.ipv4.conf.all.rp_filter 2
  sysctl_ns "$rtr" net.ipv4.conf.default.rp_filter 2
  sysctl_ns "$rtr" net.ipv4.ip_forward 1

  # Internet: the monitors on lo.
  for m in "${MONITORS[@]}"; do ip -n "$inet" addr add "$m/32" dev lo; done
  sysctl_ns "$inet" net.ipv4.ip_forward 1

  # Router <-> ISP n <-> internet.
  for n in $(seq 1 "$wans"); do
    local isp=$lab-isp$n
    sysctl_ns "$isp" net.ipv4.ip_forward 1
    sysctl_ns "$isp" net.ipv4.conf.all.rp_filter 1
    sysctl_ns "$isp" net.ipv4.conf.default.rp_filter 1
    ip -n "$rtr" link add name "isp$n" type veth peer name rtr netns "$isp"
    ip -n "$rtr" addr add "198.18.$((10 + n)).2/30" dev "isp$n"
    ip -n "$isp" addr add "198.18.$((10 + n)).1/30" dev rtr
    ip -n "$isp" link add name inet type veth peer name "isp$n" netns "$inet"
    ip -n "$isp" addr add "198.18.$((20 + n)).1/30" dev inet
    ip -n "$inet" addr add "198.18.$((20 + n)).2/30" dev "isp$n"
    ip -n "$rtr" link set "isp$n" up
    ip -n "$isp" link set rtr up
    ip -n "$isp" link set inet up
    ip -n "$inet" link set "isp$n" up
    ip -n "$isp" route add default via "198.18.$((20 + n)).2"
    # The internet reaches each ISP's customer link (the router masquerades to it).
    ip -n "$inet" route add "198.18.$((10 + n)).0/30" via "198.18.$((20 + n)).1"
    # The router's per-WAN table: a default via that WAN and, as RouterOS's
    # lookup-only-in-table does, nothing to fall back to (never leak into another WAN).
    ip -n "$rtr" route add default via "198.18.$((10 + n)).1" dev "isp$n" table $((100 + n))
    ip -n "$rtr" route add unreachable default metric 4000000000 table $((100 + n))
  done
  # The router's main table prefers ISP 1, as the base config does: a leak would show there.
  ip -n "$rtr" route add default via 198.18.11.1 dev isp1

  # Container <-> router, and the router's rules that pin each WAN's probes to its table.
  if [ "$topology" = veth ]; then
    for n in $(seq 1 "$wans"); do
      ip -n "$rtr" link add name "ctr-wan$n" type veth peer name "uplinkd-wan$n" netns "$ctr"
      ip -n "$rtr" addr add "198.18.$n.1/30" dev "ctr-wan$n"
      ip -n "$ctr" addr add "198.18.$n.2/30" dev "uplinkd-wan$n"
      ip -n "$rtr" link set "ctr-wan$n" up
      ip -n "$ctr" link set "uplinkd-wan$n" up
      ip -n "$rtr" rule add iif "ctr-wan$n" lookup $((100 + n)) priority $((1000 + n))
    done
    # RouterOS gives the container a default route via the first veth only.
    [ "$mgmt" = yes ] || ip -n "$ctr" route add default via 198.18.1.1 dev uplinkd-wan1
  else
    ip -n "$rtr" link add name ctr-veth type veth peer name uplinkd-veth netns "$ctr"
    ip -n "$rtr" addr add 198.18.9.1/29 dev ctr-veth
    for n in $(seq 1 "$wans"); do
      ip -n "$ctr" addr add "198.18.9.$((n + 1))/29" dev uplinkd-veth
      ip -n "$rtr" rule add from "198.18.9.$((n + 1))" lookup $((100 + n)) priority $((1000 + n))
    done
    ip -n "$rtr" link set ctr-veth up
    ip -n "$ctr" link set uplinkd-veth up
    [ "$mgmt" = yes ] || ip -n "$ctr" route add default via 198.18.9.1 dev uplinkd-veth
  fi
  if [ "$mgmt" = yes ]; then up_mgmt "$lab"; fi
  nsx "$rtr" nft -f - <<EOF
table ip uplab_nat {
  chain post { type nat hook postrouting priority srcnat; policy accept;
    oifname "isp*" masquerade
  }
}
EOF
  trap - ERR
  echo "netlab: $lab up ($topology, $wans WANs$([ "$mgmt" = yes ] && echo ", management veth"))"
}

cmd_down() {
  local lab=$1
  local ns
  for ns in $(ls /run/netns 2>/dev/null | grep "^$lab-" || true); do
    # A process left in a namespace keeps it (and its veths) alive after `ip netns del`.
    local pids
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -n "$pids" ] && kill $pids 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -f "/run/netns/.$lab.wans" "/run/netns/.$lab.topology" "/run/netns/.$lab.dns.log"
  # (/etc/netns itself stays: another lab may be writing into it right now.)
  rm -rf "/etc/netns/$lab-ctr"
  for f in /run/netns/."$lab".delay*.pid; do
    [ -e "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
  echo "netlab: $lab down"
}

# The management path (see the header): veth, the container's default route, the services
# address, the DNS responder and the container's resolv.conf.
up_mgmt() {
  local lab=$1 ctr=$1-ctr rtr=$1-rtr inet=$1-inet
  ip -n "$rtr" link add name ctr-mgmt type veth peer name uplinkd-mgmt netns "$ctr"
  ip -n "$rtr" addr add "$MGMT_ROUTER/30" dev ctr-mgmt
  ip -n "$ctr" addr add "$MGMT_CONTAINER/30" dev uplinkd-mgmt
  ip -n "$rtr" link set ctr-mgmt up
  ip -n "$ctr" link set uplinkd-mgmt up
  # The first interface of a RouterOS container holds its default route: here the mgmt veth.
  ip -n "$ctr" route add default via "$MGMT_ROUTER" dev uplinkd-mgmt
  ip -n "$inet" addr add "$SERVICES/32" dev lo
  local names=() n
  for n in "${SERVICE_NAMES[@]}"; do names+=("$n=$SERVICES"); done
  : >"/run/netns/.$lab.dns.log"
  # Detached from our stdout/stderr (a caller reading them to EOF must not wait for it); `down`
  # kills it with the namespace's other processes.
  NETLAB_DNS_LOG=/run/netns/.$lab.dns.log \
    nsx "$rtr" python3 "$DNS_HELPER" "$MGMT_ROUTER" "${names[@]}" </dev/null >/dev/null 2>&1 &
  # Bound within 5 s, or the lab is not up.
  local bound=no
  for _ in $(seq 1 100); do
    if [[ $(nsx "$rtr" ss -Hlun) == *"$MGMT_ROUTER:53"* ]]; then bound=yes; break; fi
    sleep 0.05
  done
  if [ "$bound" != yes ]; then echo "netlab: the DNS responder did not bind $MGMT_ROUTER:53" >&2; return 1; fi
  mkdir -p "/etc/netns/$ctr"
  echo "nameserver $MGMT_ROUTER" >"/etc/netns/$ctr/resolv.conf"
}

# nftables rules in LAB-ispN's netdev hook on the link from the router.
nft_fault() {
  local isp=$1 body=$2
  nsx "$isp" nft -f - <<EOF
table netdev $NFT_FAULT_TABLE {
  chain from_router { type filter hook ingress device "rtr" priority 0; policy accept;
    $body
  }
}
EOF
}

clear_fault() {
  local lab=$1 n=$2 isp=$1-isp$2
  nsx "$isp" nft delete table netdev "$NFT_FAULT_TABLE" 2>/dev/null || true
  nsx "$isp" nft delete table inet uplab_unreach 2>/dev/null || true
  nsx "$isp" iptables -t mangle -F PREROUTING 2>/dev/null || true
  local pidf=/run/netns/.$lab.delay$n.pid
  if [ -e "$pidf" ]; then kill "$(cat "$pidf")" 2>/dev/null || true; rm -f "$pidf"; fi
  if ! ip -n "$lab-rtr" -o link show "isp$n" | grep -q '<[^>]*,UP[,>]'; then
    ip -n "$lab-rtr" link set "isp$n" up
    # linkwatch applies carrier-up asynchronously: wait until both ends say UP (≤ 2 s).
    for _ in $(seq 1 40); do
      if ip -n "$lab-rtr" -o link show "isp$n" | grep -q 'state UP' &&
         ip -n "$isp" -o link show rtr | grep -q 'state UP'; then break; fi
      sleep 0.05
    done
    # Packets sent into the dead link left FAILED neighbour entries: forget them.
    ip -n "$lab-rtr" neigh flush dev "isp$n" 2>/dev/null || true
  fi
}

# Holds every packet entering NS on IFACE for MS (+- JITTER) ms through nfq-delay.py on QUEUE.
start_delay() {
  local ns=$1 iface=$2 q=$3 pidf=$4 ms=${5:?delay needs milliseconds} jitter=${6:-0}
  [ -x "$DELAY_HELPER" ] || die "delay needs the NFQUEUE helper $DELAY_HELPER (python3)"
  command -v iptables >/dev/null || die "delay needs iptables (iptables-nft) for NFQUEUE"
  # Detached from our stdout/stderr: a caller reading them to EOF must not wait for it.
  nsx "$ns" "$DELAY_HELPER" "$q" "$ms" "$jitter" </dev/null >/dev/null 2>&1 &
  echo $! >"$pidf"
  # The rule bypasses an unbound queue: wait (<= 5 s) until the helper has bound it.
  for _ in $(seq 1 100); do
    nsx "$ns" awk -v q="$q" '$1 == q { found = 1 } END { exit !found }' \
      /proc/net/netfilter/nfnetlink_queue 2>/dev/null && break
    sleep 0.05
  done
  nsx "$ns" iptables -t mangle -A PREROUTING -i "$iface" -j NFQUEUE --queue-num "$q" --queue-bypass
}

# A standing one-way delay on WAN n's ISP -> internet link (in LAB-inet), apart from the faults
# (which act in LAB-ispN and clear each other): a lab line with a real RTT on which outages are
# then injected. MS 0 removes it.
cmd_latency() {
  local lab=$1 wan=$2 ms=$3 jitter=${4:-0}
  local n=${wan#isp}; n=${n#ISP}; n=${n#wan}
  local inet=$lab-inet pidf=/run/netns/.$lab.delaybase$n.pid
  [ -e "/run/netns/$inet" ] || die "no namespace $inet"
  nsx "$inet" iptables -t mangle -D PREROUTING -i "isp$n" -j NFQUEUE --queue-num $((200 + n)) --queue-bypass 2>/dev/null || true
  if [ -e "$pidf" ]; then kill "$(cat "$pidf")" 2>/dev/null || true; rm -f "$pidf"; fi
  [ "$ms" = 0 ] || start_delay "$inet" "isp$n" $((200 + n)) "$pidf" "$ms" "$jitter"
}

cmd_fault() {
  local lab=$1 wan=$2 what=$3; shift 3
  local n=${wan#isp}; n=${n#ISP}; n=${n#wan}
  local isp=$lab-isp$n
  [ -e "/run/netns/$isp" ] || die "no namespace $isp"
  clear_fault "$lab" "$n"
  case $what in
    clear) ;;
    blackhole) nft_fault "$isp" "drop" ;;
    loss)
      local pct=${1:?loss needs a percentage}
      local per10k
      per10k=$(awk -v p="$pct" 'BEGIN { printf "%d", p * 100 }')
      nft_fault "$isp" "meta protocol ip numgen random mod 10000 < $per10k drop" ;;
    down) ip -n "$lab-rtr" link set "isp$n" down ;;
    unreachable)
      nsx "$isp" nft -f - <<EOF
table inet uplab_unreach {
  chain forward_reject { type filter hook forward priority 0; policy accept;
    iifname "rtr" reject with icmp type net-unreachable
  }
}
EOF
      ;;
    delay) start_delay "$isp" rtr $((100 + n)) "/run/netns/.$lab.delay$n.pid" "$@" ;;
    *) die "unknown fault $what" ;;
  esac
}

cmd_monitor() {
  local lab=$1 ip=$2 state=$3 inet=$1-inet
  case $state in
    down)
      nsx "$inet" nft add table inet uplab_mon
      nsx "$inet" nft "add chain inet uplab_mon in { type filter hook input priority 0; policy accept; }"
      nsx "$inet" nft add rule inet uplab_mon in ip daddr "$ip" drop ;;
    up)
      local h
      for h in $(nsx "$inet" nft -a list chain inet uplab_mon in 2>/dev/null |
                 awk -v ip="$ip" '$0 ~ "daddr " ip " " {print $NF}'); do
        nsx "$inet" nft delete rule inet uplab_mon in handle "$h"
      done ;;
    *) die "monitor state must be down or up" ;;
  esac
}

cmd_verify() {
  local lab=$1 wans topology
  wans=$(wans_of "$lab"); topology=$(topology_of "$lab")
  local failed=0
  for n in $(seq 1 "$wans"); do
    local dev src
    if [ "$topology" = veth ]; then dev=uplinkd-wan$n; src=198.18.$n.2
    else dev=uplinkd-veth; src=198.18.9.$((n + 1)); fi
    for m in "${MONITORS[@]}"; do
      if nsx "$lab-ctr" ping -q -c 1 -W 1 -I "$src" "$m" >/dev/null 2>&1; then
        echo "wan$n ($dev $src) -> $m ok"
      else
        echo "wan$n ($dev $src) -> $m FAILED (without the daemon's source rules this is expected for wan>1 with ctr rp_filter 1)"
        failed=1
      fi
    done
  done
  return $failed
}

cmd_info() {
  local lab=$1
  echo "topology $(topology_of "$lab"), $(wans_of "$lab") WANs"
  ls /run/netns | grep "^$lab-" || true
  echo "--- ctr"; ip -n "$lab-ctr" -br addr; ip -n "$lab-ctr" rule; ip -n "$lab-ctr" route show table all | grep -v '^local\|^broadcast\|^multicast\|fe80\|ff00' || true
  echo "--- rtr"; ip -n "$lab-rtr" rule; ip -n "$lab-rtr" route show default
}

[ $# -ge 2 ] || { sed -n '2,12p' "$0"; exit 2; }
cmd=$1; shift
case $cmd in
  up) cmd_up "$@" ;;
  down) cmd_down "$@" ;;
  fault) cmd_fault "$@" ;;
  monitor) cmd_monitor "$@" ;;
  latency) cmd_latency "$@" ;;
  exec) lab=$1; ns=$2; shift 2; nsx "$lab-$ns" "$@" ;;
  verify) cmd_verify "$@" ;;
  info) cmd_info "$@" ;;
  *) die "unknown command $cmd" ;;
esac
