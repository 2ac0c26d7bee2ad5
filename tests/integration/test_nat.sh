#!/usr/bin/env bash
# A laptop behind a home router, and a peer on the internet, in network namespaces:
#
#   home: laptops n1, n2, n3        router: nftables masquerade,        internet: n4
#         10.77.0.2  <---- veth ---->  miniupnpd (UPnP + NAT-PMP)  <---- veth ----> 11.7.0.2
#                              10.77.0.1        11.7.0.1
#
# (11.7.0.0/24 stands for the internet: a public address, so that the router's miniupnpd
# agrees to map ports and the nodes treat it as public; nothing leaves the namespaces.)
#
#   - n1 (--nat auto) maps its port through UPnP: its advertised address is the router's,
#     and n4 dials it there. The time to the mapping and to that connection are printed.
#   - n2 (--nat natpmp) maps its port through NAT-PMP on a 10 s lease, renews it, and
#     deletes it at stop.
#   - n3 (--nat off) says in its HELLO that it accepts only local connections: n4 cannot
#     dial it, sees it with no dialable address once n3 dials out, and n3 still receives
#     a record published on n4 through that connection.
#   - n6 (--nat off) behind a port forwarded by hand says reach open once n4 came in.
#   - n5 maps a port, then the router's miniupnpd stops: once the lease runs out n5 drops
#     the mapping and advertises its own address again.
# Skipped (77) without root, network namespaces, nft (or nf_tables in the kernel) or
# miniupnpd, or when pulld was built without libminiupnpc and libnatpmp (scripts/deps.sh
# installs them all).
source "$(dirname "$0")/cli_common.sh"

[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, nftables, miniupnpd)"
netns_usable || skip "creating network namespaces (ip netns) is not permitted here"
command -v nft >/dev/null 2>&1 || skip "nft not installed (Debian: nftables; scripts/deps.sh)"
MINIUPNPD=$(command -v miniupnpd || echo /usr/sbin/miniupnpd)
[ -x "$MINIUPNPD" ] || skip "miniupnpd not installed (Debian: miniupnpd-nftables; scripts/deps.sh)"

home="pull-nat-$$-h"
router="pull-nat-$$-r"
inet="pull-nat-$$-i"
lan_h="pn$$h" # home's end of the LAN link
lan_r="pn$$l" # router's end of the LAN link
wan_r="pn$$w" # router's end of the WAN link
wan_i="pn$$i" # internet's end of the WAN link
it_on_exit "ip netns del $home; ip netns del $router; ip netns del $inet"
for ns in "$home" "$router" "$inet"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
done
ip link add "$lan_h" netns "$home" type veth peer name "$lan_r" netns "$router"
ip link add "$wan_r" netns "$router" type veth peer name "$wan_i" netns "$inet"
ip -n "$home" addr add 10.77.0.2/24 dev "$lan_h"
ip -n "$router" addr add 10.77.0.1/24 dev "$lan_r"
ip -n "$router" addr add 11.7.0.1/24 dev "$wan_r"
ip -n "$inet" addr add 11.7.0.2/24 dev "$wan_i"
ip -n "$home" link set "$lan_h" up
ip -n "$router" link set "$lan_r" up
ip -n "$router" link set "$wan_r" up
ip -n "$inet" link set "$wan_i" up
ip -n "$home" route add default via 10.77.0.1
ip netns exec "$router" sh -c 'echo 1 > /proc/sys/net/ipv4/ip_forward'
wait_until 10 "the LAN link to come up" veth_up "$home" "$lan_h" "$router" "$lan_r"
wait_until 10 "the WAN link to come up" veth_up "$router" "$wan_r" "$inet" "$wan_i"

# The router: a home router's firewall (forward what the LAN starts, and what miniupnpd
# opens), masquerade to the WAN, and the chains miniupnpd fills (its defaults: table inet
# filter, chains miniupnpd, prerouting_miniupnpd, postrouting_miniupnpd).
ip netns exec "$router" nft -f - <<EOF || skip "nftables rules cannot be loaded here (a kernel without nf_tables or NAT?)"
table inet filter {
    chain miniupnpd {
    }
    chain prerouting_miniupnpd {
    }
    chain postrouting_miniupnpd {
    }
    chain forward {
        type filter hook forward priority 0; policy drop;
        ct state established,related accept
        iifname "$lan_r" oifname "$wan_r" accept
        jump miniupnpd
    }
    chain prerouting {
        type nat hook prerouting priority -100; policy accept;
        jump prerouting_miniupnpd
    }
    chain postrouting {
        type nat hook postrouting priority 100; policy accept;
        jump postrouting_miniupnpd
        oifname "$wan_r" masquerade
    }
}
EOF
mkdir -p "$IT_TMP/router"
cat >"$IT_TMP/router/miniupnpd.conf" <<EOF
ext_ifname=$wan_r
listening_ip=$lan_r
port=5000
enable_upnp=yes
enable_natpmp=yes
secure_mode=yes
system_uptime=no
uuid=3b1f2c4e-5d6a-4b7c-8d9e-0f1a2b3c4d5e
allow 1024-65535 10.77.0.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
EOF
ip netns exec "$router" "$MINIUPNPD" -d -4 -f "$IT_TMP/router/miniupnpd.conf" \
    -P "$IT_TMP/router/miniupnpd.pid" >"$IT_TMP/router/log" 2>&1 &
mpid=$!
it_on_exit "kill $mpid"
router_ready() { grep -q "Listening for NAT-PMP" "$IT_TMP/router/log"; }
wait_until 10 "miniupnpd to start in the router" router_ready
# router_maps PORT: the router forwards TCP PORT (miniupnpd's rule is in place).
router_maps() {
    local rules
    rules=$(ip netns exec "$router" nft list chain inet filter prerouting_miniupnpd)
    case "$rules" in
    *"dport $1 "*) return 0 ;;
    *) return 1 ;;
    esac
}

nat_get() { # nat_get I FIELD: field FIELD of node I's status "nat"
    pull_n "$1" --json status | json_get "nat.$2"
}
mapped() { [ -n "$(nat_get "$1" method)" ]; }

# ---- the outside peer, and a laptop mapping its port with UPnP (auto) ----
start_node_custom 4 "$inet" --listen 11.7.0.2:7450 --no-lan --nat off
t0=$(date +%s%N)
start_node_custom 1 "$home" --listen 10.77.0.2:7450 --no-lan --nat auto
wait_node 1
wait_node 4
if nat_get 1 error | has "built without"; then
    skip "pulld was built without libminiupnpc and libnatpmp ($(nat_get 1 error))"
fi
wait_until 20 "n1 to map its port" mapped 1
t_map=$(($(date +%s%N) - t0))
assert_eq "$(nat_get 1 method)" upnp "n1's mapping method"
assert_eq "$(nat_get 1 external)" 11.7.0.1 "n1's external address"
assert_eq "$(nat_get 1 reach)" open "n1's reach"
map_ms=$(nat_get 1 mapped_ms)
router_maps 7450 || fail "the router has no rule for n1's port"
id1=$(node_id 1)
id4=$(node_id 4)
adv1=$(node_addr 1)
assert_eq "$adv1" "$id1@11.7.0.1:$(nat_get 1 mapped_port)" "n1's first address"
assert_contains "$(pull_n 1 status)" "upnp: 11.7.0.1:" "pull status"
log "n1 mapped port $(nat_get 1 mapped_port) through UPnP in $map_ms ms after start" \
    "($((t_map / 1000000)) ms until status showed it)"

t1=$(date +%s%N)
pull_n 4 connect "$adv1" >/dev/null || fail "n4 could not dial n1 at its mapped address $adv1"
t_conn=$((($(date +%s%N) - t1) / 1000000))
wait_until 10 "n4 connected to n1" peers_has 4 "$id1"
inbound=$(pull_n 1 --json peers |
    python3 -c 'import json,sys; print([p["inbound"] for p in json.load(sys.stdin) if p["id"] == sys.argv[1]][0])' "$id4")
assert_eq "$inbound" True "n1 sees n4's connection as inbound"
log "n4 dialed n1 at $adv1 in $t_conn ms"
doc1=$(pull_n 1 doctor 2>&1 || true)
assert_contains "$doc1" "the router maps 11.7.0.1:7450 to this node (upnp" "pull doctor on n1"
case "$doc1" in *"cannot connect to 11.7.0.1"*) fail "pull doctor dialed the router's side: $doc1" ;; esac

# ---- a second laptop mapping with NAT-PMP on a short lease: renewed; deleted at stop ----
start_node_custom 2 "$home" --listen 10.77.0.2:7451 --no-lan --nat natpmp --nat-lease-s 10
wait_node 2
wait_until 20 "n2 to map its port" mapped 2
assert_eq "$(nat_get 2 method)" natpmp "n2's mapping method"
assert_eq "$(nat_get 2 external)" 11.7.0.1 "n2's external address"
assert_eq "$(nat_get 2 lease_s)" 10 "n2's lease"
port2=$(nat_get 2 mapped_port)
router_maps "$port2" || fail "the router has no rule for n2's port"
log "n2 mapped port $port2 through NAT-PMP in $(nat_get 2 mapped_ms) ms after start"
renewed() { [ "$(nat_get 2 attempts)" -ge 3 ]; }
wait_until 20 "n2 to renew its mapping twice (at half of a 10 s lease)" renewed
mapped 2 || fail "n2 lost its mapping on renewal: $(nat_get 2 error)"
router_maps "$port2" || fail "the router dropped n2's renewed mapping"
log "n2 renewed its mapping twice, still $(nat_get 2 external):$(nat_get 2 mapped_port)"
stop_node 2
router_maps "$port2" && fail "n2's mapping is still on the router after it stopped"
log "n2's mapping deleted at stop"

# ---- a laptop with --nat off: not dialable from outside, still gets records ----
start_node_custom 3 "$home" --listen 10.77.0.2:7452 --no-lan --nat off
wait_node 3
id3=$(node_id 3)
assert_eq "$(nat_get 3 reach)" local "n3's reach"
assert_contains "$(pull_n 3 status)" "only local peers can dial in" "pull status of n3"
assert_contains "$(pull_n 3 doctor 2>&1 || true)" "port mapping off (--nat off)" "pull doctor on n3"
if pull_n 4 connect "$id3@11.7.0.1:7452" >/dev/null 2>&1; then
    fail "n4 dialed n3 through the router although n3 mapped no port"
fi
log "n4 cannot dial n3 (--nat off)"
pull_n 3 connect "$(node_addr 4)" >/dev/null || fail "n3 could not dial out to n4"
wait_until 10 "n4 to see n3" peers_has 4 "$id3"
addr3=$(pull_n 4 --json peers |
    python3 -c 'import json,sys; print([p["address"] for p in json.load(sys.stdin) if p["id"] == sys.argv[1]][0])' "$id3")
assert_eq "$addr3" "11.7.0.1:0" "n3's address as n4 knows it (not dialable)"
rec=$(pull_n 4 --json offer add "Bike repair from the internet side" --tag bike | json_get id)
wait_until 15 "n3 to receive n4's record through the connection it dialed" search_has 3 "$rec"
log "n3 received n4's record through its own connection"

for i in 1 3 4; do
    node_alive "$i" || fail "n$i died"
done
stop_node 1
router_maps 7450 && fail "n1's mapping is still on the router after it stopped"
stop_node 3

# ---- a port forwarded by hand: the first peer from outside proves the node dialable ----
start_node_custom 6 "$home" --listen 10.77.0.2:7454 --no-lan --nat off
wait_node 6
assert_eq "$(nat_get 6 reach)" local "n6's reach before anyone came in"
ip netns exec "$router" nft add rule inet filter prerouting_miniupnpd \
    iifname "$wan_r" tcp dport 7454 dnat ip to 10.77.0.2:7454
ip netns exec "$router" nft add rule inet filter miniupnpd \
    iifname "$wan_r" ip daddr 10.77.0.2 tcp dport 7454 accept
pull_n 4 connect "$(node_id 6)@11.7.0.1:7454" >/dev/null ||
    fail "n4 could not dial n6 through the port forwarded by hand"
proven() { [ "$(nat_get 6 reach)" = open ]; }
wait_until 10 "n6 to say peers outside can dial it" proven
log "n6 (--nat off, a port forwarded by hand) says reach open once n4 came in"
stop_node 6

# ---- the router goes away: the mapping runs out, the node advertises its own address ----
start_node_custom 5 "$home" --listen 10.77.0.2:7453 --no-lan --nat natpmp --nat-lease-s 10
wait_node 5
wait_until 20 "n5 to map its port" mapped 5
kill "$mpid"
t_kill=$(date +%s%N)
unmapped() { ! mapped 5; }
wait_until 30 "n5 to notice its mapping ran out" unmapped
log "n5 dropped its mapping $((($(date +%s%N) - t_kill) / 1000000)) ms after the router" \
    "stopped answering (10 s lease): $(nat_get 5 error)"
assert_eq "$(nat_get 5 reach)" local "n5's reach without its mapping"
assert_eq "$(node_addr 5)" "$(node_id 5)@10.77.0.2:7453" "n5's first address without its mapping"
stop_node 5
stop_node 4
echo "PASS: UPnP mapping in $map_ms ms, outside peer connected in $t_conn ms; NAT-PMP mapped" \
    "and released; --nat off: not dialable, records arrive through its own connection"
