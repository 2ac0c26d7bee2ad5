#!/usr/bin/env bash
# A partition and its healing, between real network namespaces.
#
#   namespace A: n1                 namespace B: n2, n3 (talking over B's loopback too)
#           10.252.0.1 <---- veth ----> 10.252.0.2
#
# n1 dials n2 and n3 across the veth link; records written before the cut reach all three.
# Then the link is cut (ip link set down, both ends): the nodes notice (short idle timeout)
# and drop the sessions; records are written on both sides while cut. The link comes back:
# the nodes dial each other again by themselves and reconcile (anti-entropy), and every
# node ends with every record. The time from restore to full convergence is printed.
# Skipped (77) without permission for network namespaces.
source "$(dirname "$0")/cli_common.sh"

netns_usable || skip "creating network namespaces (ip netns) is not permitted here"

nsa="pull-ns-$$-a"
nsb="pull-ns-$$-b"
va="pn$$a"
vb="pn$$b"
veth_pair "$nsa" "$nsb" "$va" "$vb" 10.252.0

# Short timeouts so the test sees a dead link within seconds, and frequent anti-entropy.
fast=(--no-lan --idle-timeout-ms 3000 --sync-interval-ms 1000)
start_node_custom 1 "$nsa" --listen 10.252.0.1:0 "${fast[@]}"
start_node_custom 2 "$nsb" --listen 10.252.0.2:0 "${fast[@]}"
start_node_custom 3 "$nsb" --listen 10.252.0.2:0 "${fast[@]}"
for i in 1 2 3; do
    wait_node "$i"
done
id1=$(node_id 1)
id2=$(node_id 2)
id3=$(node_id 3)
addr_of() { # the node's address on the veth link
    pull_n "$1" --json id | python3 -c 'import json,sys; print([a for a in json.load(sys.stdin)["addresses"] if "@10.252." in a][0])'
}
pull_n 1 connect "$(addr_of 2)" >/dev/null || fail "n1 could not dial n2"
pull_n 1 connect "$(addr_of 3)" >/dev/null || fail "n1 could not dial n3"
pull_n 2 connect "$(addr_of 3)" >/dev/null || fail "n2 could not dial n3"
wait_until 10 "n1 connected to n2" peers_has 1 "$id2"
wait_until 10 "n1 connected to n3" peers_has 1 "$id3"

has_all() { # has_all I ID...: node I finds every record ID
    local i=$1 id
    shift
    for id in "$@"; do
        search_has "$i" "$id" || return 1
    done
}

before=$(pull_n 1 --json offer add "Bike repair before the cut" --tag bike | json_get id)
for i in 2 3; do
    wait_until 10 "n$i to get the record written before the cut" search_has "$i" "$before"
done
log "before the cut: one record reached all three nodes"

# ---- cut ----
ip -n "$nsa" link set "$va" down
ip -n "$nsb" link set "$vb" down
t_cut=$(date +%s)
log "link cut"
no_peer_across() {
    ! peers_has 1 "$id2" && ! peers_has 1 "$id3" && ! peers_has 2 "$id1" && ! peers_has 3 "$id1"
}
wait_until 30 "the nodes to drop the sessions across the cut link" no_peer_across
log "sessions across the link dropped after $(($(date +%s) - t_cut)) s"

ids_a=()
ids_b=()
for k in 1 2 3; do
    ids_a+=("$(pull_n 1 --json offer add "Side A offer $k while cut" --tag sidea | json_get id)")
    ids_b+=("$(pull_n 3 --json need add "Side B need $k while cut" --tag sideb | json_get id)")
done
withdrawn=$(pull_n 1 --json offer withdraw "$before" | json_get id)
wait_until 10 "n2 to get side B's records (same side)" has_all 2 "${ids_b[@]}"
sleep 2
for i in 2 3; do
    for id in "${ids_a[@]}"; do
        if search_has "$i" "$id"; then
            fail "n$i got side A's record $id through a cut link"
        fi
    done
done
for id in "${ids_b[@]}"; do
    if search_has 1 "$id"; then
        fail "n1 got side B's record $id through a cut link"
    fi
done
log "while cut: 3 records on each side stayed on their side"

# ---- restore ----
ip -n "$nsa" link set "$va" up
ip -n "$nsb" link set "$vb" up
t0=$(date +%s%N)
across() { peers_has 1 "$id2" || peers_has 1 "$id3"; }
# The nodes find each other again by themselves (their known peers), without any help.
redial=auto
wait_until 30 "n1 to reconnect across the link by itself" across
t_conn=$(date +%s%N)
log "reconnected ($redial) $(((t_conn - t0) / 1000000)) ms after the link was restored"
converged() {
    has_all 1 "${ids_b[@]}" && has_all 2 "${ids_a[@]}" && has_all 3 "${ids_a[@]}" &&
        ! search_has 2 "$before" && ! search_has 3 "$before"
}
wait_until 120 "all nodes to converge after the link came back" converged
t1=$(date +%s%N)
log "converged $(((t1 - t0) / 1000000)) ms after the link was restored (withdrawal $withdrawn included)"
for i in 1 2 3; do
    node_alive "$i" || fail "n$i died"
done
for i in 1 2 3; do
    stop_node "$i"
done
echo "PASS: partition healed ($redial reconnection), convergence in $(((t1 - t0) / 1000000)) ms after the restore, $(((t1 - t_conn) / 1000000)) ms after reconnecting"
