#!/usr/bin/env bash
# LAN discovery (PROTOCOL.md section 13): nodes started WITHOUT --bootstrap and WITHOUT
# --no-lan find each other by themselves.
#
#   part 1, one host:  n1 and n2 on loopback, multicast looped back through lo;
#                      n3 on the same LAN port but with another network key: ignored.
#   part 2, two hosts: n4 and n5 in two network namespaces joined by a veth pair (like two
#                      laptops on one Ethernet), found through multicast/broadcast.
#
# "Found" means: each lists the other as an active peer in `pull --json peers`, and an
# offer added on one is found by `pull search` on the other. Each part uses its own UDP
# port (--lan-port) derived from the pid, so parallel tests don't hear each other. Part 2
# is skipped without permission for network namespaces; the test is skipped (77) if no
# part could run.
source "$(dirname "$0")/cli_common.sh"

lan_port=$((20000 + $$ % 20000))
ran=0

# ---- part 1: one host, loopback ----
if ip -4 addr show dev lo 2>/dev/null | has 'inet 127\.'; then
    t0=$(date +%s%N)
    start_node_custom 1 "" --listen 127.0.0.1:0 --lan-port "$lan_port"
    start_node_custom 2 "" --listen 127.0.0.1:0 --lan-port "$lan_port"
    other_key=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    start_node_custom 3 "" --listen 127.0.0.1:0 --lan-port "$lan_port" --network-key "$other_key"
    wait_node 1
    wait_node 2
    wait_node 3
    id1=$(node_id 1)
    id2=$(node_id 2)
    id3=$(node_id 3)
    if ! grep -q "lan: discovery on" "$(node_dir 1)/log"; then
        grep "lan:" "$(node_dir 1)/log" >&2 || true
        fail "n1 did not start LAN discovery"
    fi
    wait_until 20 "n1 to list n2 as an active peer (LAN, loopback)" peers_has 1 "$id2"
    wait_until 20 "n2 to list n1 as an active peer (LAN, loopback)" peers_has 2 "$id1"
    t1=$(date +%s%N)
    log "loopback: n1 and n2 found each other in $(((t1 - t0) / 1000000)) ms after start"
    offer=$(pull_n 1 --json offer add "LAN discovered soldering iron" --tag lan | json_get id)
    wait_until 20 "n2 to find n1's offer" search_has 2 "$offer" soldering
    # n3 (other network) heard the same announcements but must not have connected
    sleep 2
    if peers_has 1 "$id3" || peers_has 3 "$id1" || peers_has 3 "$id2"; then
        fail "a node of another network was connected through LAN discovery"
    fi
    if grep -q "lan: discovered $id1\|lan: discovered $id2" "$(node_dir 3)/log"; then
        fail "n3 (other network key) learned a peer of another network"
    fi
    log "loopback: the node with another network key stayed apart"
    # the counters behind it are in `pull status --json` ("lan")
    lan1=$(pull_n 1 --json status | python3 -c 'import json,sys; l=json.load(sys.stdin)["lan"]; print(l["running"], l["learned"], l["tx"])')
    lan3=$(pull_n 3 --json status | python3 -c 'import json,sys; l=json.load(sys.stdin)["lan"]; print(l["rx_other_net"])')
    read -r running learned tx <<<"$lan1"
    [ "$running" = True ] && [ "$learned" -ge 1 ] && [ "$tx" -ge 1 ] ||
        fail "n1's status lan counters are off: $lan1"
    [ "$lan3" -ge 1 ] || fail "n3 counted no announcement of another network (rx_other_net $lan3)"
    log "loopback: status lan: n1 running=$running learned=$learned tx=$tx; n3 rx_other_net=$lan3"
    stop_node 1
    stop_node 2
    stop_node 3
    ran=$((ran + 1))
else
    log "part 1 skipped: no IPv4 loopback"
fi

# ---- part 2: two network namespaces on one veth link ----
if netns_usable; then
    nsa="pull-lan-$$-a"
    nsb="pull-lan-$$-b"
    veth_pair "$nsa" "$nsb" "pl$$a" "pl$$b" 10.251.0
    t0=$(date +%s%N)
    start_node_custom 4 "$nsa" --listen 0.0.0.0:0 --lan-port "$((lan_port + 1))"
    start_node_custom 5 "$nsb" --listen 0.0.0.0:0 --lan-port "$((lan_port + 1))"
    wait_node 4
    wait_node 5
    id4=$(node_id 4)
    id5=$(node_id 5)
    wait_until 20 "n4 to list n5 as an active peer (LAN, veth)" peers_has 4 "$id5"
    wait_until 20 "n5 to list n4 as an active peer (LAN, veth)" peers_has 5 "$id4"
    t1=$(date +%s%N)
    log "veth: n4 and n5 found each other in $(((t1 - t0) / 1000000)) ms after start"
    pull_n 4 --json peers >"$IT_TMP/peers4.json"
    pull_n 5 --json peers >"$IT_TMP/peers5.json"
    grep -q '10\.251\.0\.' "$IT_TMP/peers4.json" "$IT_TMP/peers5.json" ||
        fail "neither node lists the other at its veth address: $(cat "$IT_TMP/peers4.json" "$IT_TMP/peers5.json")"
    offer=$(pull_n 5 --json need add "Looking for a LAN party" --tag lan | json_get id)
    wait_until 20 "n4 to find n5's need" search_has 4 "$offer" party
    stop_node 4
    stop_node 5
    ran=$((ran + 1))
else
    log "part 2 skipped: creating network namespaces is not permitted here"
fi

[ "$ran" -gt 0 ] || skip "neither loopback multicast nor network namespaces are usable"
echo "PASS: LAN discovery ($ran part(s))"
