#!/bin/sh
# mpi_netns.sh — data-parallel training across two "hosts": two network namespaces on this
# machine joined by a veth pair, one MPI rank in each, Open MPI's TCP transport between them
# (--mca btl tcp,self: no shared memory). mpirun starts in the first namespace and reaches the
# second through `ip netns exec` as its remote agent (plm_rsh_agent, in place of ssh). The
# 2-rank SFT run across the namespaces must write the same bytes and log the same losses as
# the same 2-rank run on one host (the gradients are summed in rank order whatever carries
# them) and as one process with the same global batch (the default grad_accum_dtype fp64 sums
# the micro-batch gradients in double, so their grouping over ranks does not show;
# test_mpi.c checks that against the issue's 1e-6 and reports it bitwise). Skips, saying why, where hone has no
# MPI, mpirun or ip is missing, network namespaces are not allowed (not root, no CAP_NET_ADMIN,
# a container without them) or ../shared is absent.
# Usage: mpi_netns.sh SRCDIR (make check runs it with HONE_BIN and HONE_SHARED set).
# Prints test-framework lines ending in RESULT.
bin=${HONE_BIN:-}
shared=${HONE_SHARED:-${1:-.}/../shared}
skip() { echo "SKIP mpi_netns: $*"; echo "RESULT 0 0 1"; exit 0; }
[ -n "$bin" ] && [ -x "$bin" ] || skip "HONE_BIN is not set (make check sets it to the built hone)"
! "$bin" info 2>/dev/null | grep -q '^mpi: *not built in' || skip "hone was built without MPI"
command -v mpirun >/dev/null 2>&1 || skip "mpirun is not on PATH (apt-get install openmpi-bin)"
command -v ip >/dev/null 2>&1 || skip "ip is not on PATH (apt-get install iproute2)"
[ -f "$shared/models/stories260K/stories260K.bin" ] || skip "../shared/models/stories260K is absent"

tag=$$
nsa=hone-mpi-$tag-a nsb=hone-mpi-$tag-b
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hone-netns-XXXXXX") || exit 1
cleanup() { ip netns del "$nsa" 2>/dev/null; ip netns del "$nsb" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
ip netns add "$nsa" 2>"$tmp/err" || skip "ip netns add is not allowed here ($(head -c 200 "$tmp/err"))"
ip netns add "$nsb" 2>"$tmp/err" || skip "ip netns add is not allowed here ($(head -c 200 "$tmp/err"))"
# 10.77.x.1 and .2 on a veth pair (names of at most 15 characters)
net=10.77.$((tag % 200 + 20))
ip link add "hv${tag}a" type veth peer name "hv${tag}b" 2>"$tmp/err" || skip "cannot create a veth pair ($(head -c 200 "$tmp/err"))"
ip link set "hv${tag}a" netns "$nsa" && ip link set "hv${tag}b" netns "$nsb" &&
  ip -n "$nsa" addr add "$net.1/24" dev "hv${tag}a" && ip -n "$nsb" addr add "$net.2/24" dev "hv${tag}b" &&
  ip -n "$nsa" link set "hv${tag}a" up && ip -n "$nsb" link set "hv${tag}b" up &&
  ip -n "$nsa" link set lo up && ip -n "$nsb" link set lo up || skip "cannot configure the veth pair"

# the remote agent: "host" is a namespace's address; the rest is the command mpirun would ssh
cat > "$tmp/agent" <<AGENT
#!/bin/sh
host=\$1; shift
case \$host in $net.1) ns=$nsa ;; $net.2) ns=$nsb ;; *) echo "agent: unknown host \$host" >&2; exit 1 ;; esac
exec ip netns exec \$ns sh -c "\$*"
AGENT
chmod +x "$tmp/agent"

# ranks of a sanitizer build: Open MPI's own leaks at exit are not reported (every other ASan
# check stays on); undefined behaviour stops the rank
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
unset HONE_CPUSET
"$bin" convert llama2c "$shared/models/stories260K/stories260K.bin" "$tmp/model" --tokenizer "$shared/models/stories260K/tok512.model" \
  >"$tmp/convert.log" 2>&1 || { cat "$tmp/convert.log"; echo "FAIL mpi_netns: hone convert"; echo "RESULT 0 1 0"; exit 1; }
i=0
names="Tom Lily Ben Sara Max Mia Sam Anna"
while [ $i -lt 32 ]; do
  for n in $names; do
    printf '{"prompt": "%s saw a red ball %d.", "completion": " %s was very happy and played with it all day."}\n' "$n" "$i" "$n"
    i=$((i + 1))
  done
done >"$tmp/sft.jsonl"
cat >"$tmp/sft.yaml" <<YAML
model_name_or_path: $tmp/model
learning_rate: 1.0e-3
max_steps: 4
save_steps: 2
per_device_train_batch_size: 2
gradient_accumulation_steps: 2
max_length: 48
logging_steps: 1
threads: 1
seed: 5
datasets:
  - path: $tmp/sft.jsonl
YAML

pass=0 fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
# one host, two ranks
timeout 120 mpirun -np 2 --oversubscribe "$bin" sft "$tmp/sft.yaml" --set output_dir="$tmp/local" >"$tmp/local.log" 2>&1 ||
  { cat "$tmp/local.log"; bad "mpi_netns: 2 ranks on one host failed"; }
# one process, the same global batch (2 micro-batches x 2 ranks)
timeout 120 "$bin" sft "$tmp/sft.yaml" --set output_dir="$tmp/one" --set gradient_accumulation_steps=4 >"$tmp/one.log" 2>&1 ||
  { cat "$tmp/one.log"; bad "mpi_netns: one process failed"; }
# two "hosts": rank 0 in $nsa, rank 1 in $nsb, TCP over the veth pair
timeout 120 ip netns exec "$nsa" mpirun -np 2 --host "$net.1,$net.2" --bind-to none --mca plm_rsh_agent "$tmp/agent" \
  --mca btl tcp,self --mca btl_tcp_if_include "$net.0/24" --mca oob_tcp_if_include "$net.0/24" \
  "$bin" sft "$tmp/sft.yaml" --set output_dir="$tmp/netns" >"$tmp/netns.log" 2>&1
rc=$?
if [ $rc -ne 0 ]; then
  cat "$tmp/netns.log"; bad "mpi_netns: 2 ranks across the namespaces failed (exit $rc)"
elif cmp -s "$tmp/local/final/model.safetensors" "$tmp/netns/final/model.safetensors" &&
     cmp -s "$tmp/local/checkpoint-2/optimizer.safetensors" "$tmp/netns/checkpoint-2/optimizer.safetensors"; then
  ok "mpi_netns_bitwise (one rank in each namespace over TCP writes the bytes of the 2-rank run on one host)"
else
  bad "mpi_netns_bitwise: the run across the namespaces wrote other weights than the 2-rank run on one host"
fi
if [ $rc -eq 0 ] && cmp -s "$tmp/one/final/model.safetensors" "$tmp/netns/final/model.safetensors"; then
  ok "mpi_netns_one_process (one rank in each namespace writes the bytes of one process with the same global batch)"
else
  bad "mpi_netns_one_process: the run across the namespaces wrote other weights than one process with the same global batch"
fi
# the logged losses and gradient norms, without the timings
strip() { sed 's/, "tokens_per_second": [^,}]*//' "$1"; }
if [ $rc -eq 0 ] && [ "$(strip "$tmp/local/metrics.jsonl")" = "$(strip "$tmp/netns/metrics.jsonl")" ]; then
  ok "mpi_netns_metrics (the same losses and gradient norms, step by step)"
elif [ $rc -eq 0 ]; then
  bad "mpi_netns_metrics: the logged values differ"; diff "$tmp/local/metrics.jsonl" "$tmp/netns/metrics.jsonl" | head -6
fi
echo "RESULT $pass $fail 0"
[ "$fail" -eq 0 ]
