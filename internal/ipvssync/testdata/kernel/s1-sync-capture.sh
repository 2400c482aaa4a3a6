# Capture real kernel IPVS sync messages (master in the root netns, backup
# kernel daemon + python receiver in netns bk, over the veth pair sy0/sy1).
. /oracle-lib.sh
topo 2
ip netns add bk
ip link add sy0 type veth peer name sy1 netns bk
ip addr add 198.18.7.1/24 dev sy0
ip link set sy0 up
ip -n bk link set lo up
ip -n bk addr add 198.18.7.2/24 dev sy1
ip -n bk link set sy1 up
cat > /tmp/rx.py <<'EOF'
import socket, struct, sys
ifname, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, 25, ifname.encode())
s.bind(('224.0.0.81', port))
idx = socket.if_nametoindex(ifname)
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, struct.pack('=4s4si', socket.inet_aton('224.0.0.81'), b'\0'*4, idx))
with open(out, 'a', buffering=1) as f:
    while True:
        d, a = s.recvfrom(65535)
        f.write('%s:%d %s\n' % (a[0], a[1], d.hex()))
EOF
cat > /tmp/udpc.py <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[3], int(sys.argv[4])))
s.settimeout(2)
for i in range(int(sys.argv[5])):
    s.sendto(b'x', (sys.argv[1], int(sys.argv[2])))
    try: print(s.recv(100).decode().strip())
    except OSError as e: print('timeout', e)
EOF
ip netns exec bk python3 /tmp/rx.py sy1 8848 /tmp/cap.txt &
RX=$!
sleep 1
# backup: same services so that synced connections bind to dests
ip netns exec bk ipvsadm -A -t $VIP:80 -s rr
ip netns exec bk ipvsadm -a -t $VIP:80 -r $(rsip 1):80 -m
ip netns exec bk ipvsadm -a -t $VIP:80 -r $(rsip 2):80 -m
ip netns exec bk ipvsadm -A -u $VIP:80 -s rr
ip netns exec bk ipvsadm -a -u $VIP:80 -r $(rsip 1):80 -m
ip netns exec bk ipvsadm -a -u $VIP:80 -r $(rsip 2):80 -m
# no TCP 81 service on the backup: its synced connections stay unbound
t ip netns exec bk ipvsadm --start-daemon backup --mcast-interface sy1
ipvsadm -A -t $VIP:80 -s rr
ipvsadm -a -t $VIP:80 -r $(rsip 1):80 -m
ipvsadm -a -t $VIP:80 -r $(rsip 2):80 -m
ipvsadm -A -u $VIP:80 -s rr
ipvsadm -a -u $VIP:80 -r $(rsip 1):80 -m
ipvsadm -a -u $VIP:80 -r $(rsip 2):80 -m
ipvsadm -A -t $VIP:81 -s rr -p 300
ipvsadm -a -t $VIP:81 -r $(rsip 1):81 -m
ipvsadm -A -t [$VIP6]:80 -s rr
ipvsadm -a -t [$VIP6]:80 -r [$(rsip6 1)]:80 -m
t ipvsadm --start-daemon master --mcast-interface sy0 --syncid 7
t ipvsadm -L --daemon
t ip netns exec bk ipvsadm -L --daemon
t sysctl net.ipv4.vs.sync_threshold net.ipv4.vs.sync_version net.ipv4.vs.sync_refresh_period net.ipv4.vs.sync_retries net.ipv4.vs.sync_persist_mode net.ipv4.vs.sync_ports
section "v1: TCP NAT, 2 connections with data, closed"
t seqc $VIP 80 2 --sport 40000 --send 100
section "v1: UDP, 4 datagrams from one socket"
t incl python3 /tmp/udpc.py $VIP 80 198.18.0.10 41000 4
section "v1: persistent TCP 81 (template), held"
t seqc $VIP 81 1 --sport 42000 --send 100 --hold --linger 1
section "v1: IPv6 TCP"
t seqc $VIP6 80 1 --sport 43000 --send 100
sleep 4
t ipvsadm -L -n -c
t ip netns exec bk ipvsadm -L -n -c
t ip netns exec bk cat /proc/net/ip_vs_conn_sync
t ip netns exec bk ipvsadm -L -n
echo "==== capture v1"
cat /tmp/cap.txt
: > /tmp/cap.txt
section "v0"
sysctl -qw net.ipv4.vs.sync_version=0
t seqc $VIP 80 1 --sport 44000 --send 100
t seqc $VIP 81 1 --sport 44100 --send 100
t incl python3 /tmp/udpc.py $VIP 80 198.18.0.10 44200 4
sleep 4
t ipvsadm -L -n -c
t ip netns exec bk ipvsadm -L -n -c
t ip netns exec bk cat /proc/net/ip_vs_conn_sync
echo "==== capture v0"
cat /tmp/cap.txt
kill $RX
