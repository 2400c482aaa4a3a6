# hash: which real server the kernel's mh, sh and dh schedulers give each of
# many client addresses (and ports, with mh-port / sh-port), through real
# traffic. Read by internal/sched's TestHashOracle, which replays the same
# configuration on GoLVS's schedulers; keep the two in step.
# Run (as root, see /work/shared/oracle/README.md):
#   /work/shared/oracle/run.sh internal/sched/testdata/oracle /tmp/hash-out
# then copy /tmp/hash-out/hash.out and _versions.txt here.
. /oracle-lib.sh
# Client addresses 198.18.0.10..99 and 101..210: .100 is the VIP, which
# the client must not hold itself.
topo 4 90
for i in $(seq 101 210); do ip -n cl addr add 198.18.0.$i/24 dev cl0; done
for i in $(seq 1 60); do ip -n cl -6 addr add 2001:db8:c::1:$(printf %x $i)/64 dev cl0 nodad; done
SRC4=$(seq -s, -f '198.18.0.%g' 10 99),$(seq -s, -f '198.18.0.%g' 101 210)
SRC6=$(for i in $(seq 1 60); do printf '2001:db8:c::1:%x,' $i; done); SRC6=${SRC6%,}
sleep 1

section "mh: rs1..rs4 weights 1 2 3 1"
t ipvsadm -A -t $VIP:80 -s mh
for i in 1 2 3 4; do t ipvsadm -a -t $VIP:80 -r $(rsip $i):80 -m -w $(echo 1 2 3 1 | cut -d' ' -f$i); done
t ipvsadm -L -n --nosort -t $VIP:80
t seqc $VIP 80 200 --src $SRC4

section "mh: rs2 weight 0, no fallback"
t ipvsadm -e -t $VIP:80 -r $(rsip 2):80 -m -w 0
t seqc $VIP 80 200 --src $SRC4

section "mh: rs2 weight 0, mh-fallback"
t ipvsadm -E -t $VIP:80 -s mh -b mh-fallback
t seqc $VIP 80 200 --src $SRC4

section "mh: rs3 deleted, rs2 back to weight 2"
t ipvsadm -d -t $VIP:80 -r $(rsip 3):80
t ipvsadm -e -t $VIP:80 -r $(rsip 2):80 -m -w 2
t ipvsadm -L -n --nosort -t $VIP:80
t seqc $VIP 80 200 --src $SRC4

section "mh-port (UDP): rs1..rs4 weights 5 1 1 2, one client, source ports 20000.."
t ipvsadm -A -u $VIP:80 -s mh -b mh-port
for i in 1 2 3 4; do t ipvsadm -a -u $VIP:80 -r $(rsip $i):80 -m -w $(echo 5 1 1 2 | cut -d' ' -f$i); done
t seqc $VIP 80 150 --udp --src 198.18.0.10 --sport 20000

section "mh IPv6: rs1..rs3 weights 1 1 2"
t ipvsadm -A -t [$VIP6]:80 -s mh
for i in 1 2 3; do t ipvsadm -a -t [$VIP6]:80 -r [$(rsip6 $i)]:80 -m -w $(echo 1 1 2 | cut -d' ' -f$i); done
t seqc $VIP6 80 60 --src $SRC6

section "sh: rs1..rs4 weights 1 2 3 1"
t ipvsadm -A -t $VIP:81 -s sh
for i in 1 2 3 4; do t ipvsadm -a -t $VIP:81 -r $(rsip $i):81 -m -w $(echo 1 2 3 1 | cut -d' ' -f$i); done
t seqc $VIP 81 200 --src $SRC4

section "sh: rs2 weight 0, no fallback"
t ipvsadm -e -t $VIP:81 -r $(rsip 2):81 -m -w 0
t seqc $VIP 81 200 --src $SRC4

section "sh: rs2 weight 0, sh-fallback"
t ipvsadm -E -t $VIP:81 -s sh -b sh-fallback
t seqc $VIP 81 200 --src $SRC4

section "sh-port (UDP): rs1..rs4 weights 1 1 1 1, one client, source ports 30000.."
t ipvsadm -A -u $VIP:81 -s sh -b sh-port
for i in 1 2 3 4; do t ipvsadm -a -u $VIP:81 -r $(rsip $i):81 -m -w 1; done
t seqc $VIP 81 150 --udp --src 198.18.0.10 --sport 30000

section "sh IPv6: rs1..rs3 weights 1 1 2"
t ipvsadm -A -t [$VIP6]:81 -s sh
for i in 1 2 3; do t ipvsadm -a -t [$VIP6]:81 -r [$(rsip6 $i)]:81 -m -w $(echo 1 1 2 | cut -d' ' -f$i); done
t seqc $VIP6 81 60 --src $SRC6

section "dh (fwmark 1 = TCP to 198.18.1.0/24 port 80): rs1..rs4"
ip route add local 198.18.1.0/24 dev lo
t iptables -t mangle -A PREROUTING -i d-cl -p tcp -d 198.18.1.0/24 --dport 80 -j MARK --set-mark 1
t ipvsadm -A -f 1 -s dh
for i in 1 2 3 4; do t ipvsadm -a -f 1 -r $(rsip $i):80 -m; done
DST=$(seq -s, -f '198.18.1.%g' 1 120)
t seqc $DST 80 120 --src 198.18.0.10
t ipvsadm -L -n
