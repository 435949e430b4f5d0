#!/usr/bin/python3
"""Drives ringcache's Redis door with redis-py's Redis Cluster client.

RedisCluster reads the slot map (CLUSTER SLOTS) from the node it is given
and then sends each key to its owner itself: no forwarding hop. It runs:

1. SET of --keys keys (PREFIX:0 ... PREFIX:N-1) with a 60 s TTL, then GET
   of each: the values come back;
2. TTL of one: between 1 and 60 s;
3. MSET and MGET of keys sharing a {hash tag} (one slot, so one owner);
4. DEL of one key, then EXISTS: 0;
5. the masters it learned: one per node, printed.

    /usr/bin/python3 redis_cluster.py --addr 127.0.0.1:6401

Needs redis-py 4.1 or later (Debian: apt-get install -y python3-redis, for
/usr/bin/python3). Exits 0 when every result is what it should be, 1 when
one is not (or a command fails), 2 on bad usage.
"""

import argparse
import os
import sys

try:
    from redis.cluster import ClusterNode, RedisCluster
except ImportError as err:  # pragma: no cover - depends on the machine
    sys.exit(
        f"redis_cluster.py: {err}: this needs redis-py 4.1 or later; on Debian: "
        "apt-get install -y python3-redis, then run it with /usr/bin/python3"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--addr", default=os.environ.get("RINGCACHE_RESP_ADDR", "127.0.0.1:6401"),
                    help="host:port of any node's Redis door (default $RINGCACHE_RESP_ADDR, then 127.0.0.1:6401)")
    ap.add_argument("--prefix", default="example-python", help="key prefix (default example-python)")
    ap.add_argument("--keys", type=int, default=100, help="how many keys to SET and GET (default 100)")
    ap.add_argument("--password", default=os.environ.get("RINGCACHE_TOKEN"),
                    help="AUTH token when the node has an auth: section (default $RINGCACHE_TOKEN)")
    args = ap.parse_args()
    host, sep, port = args.addr.rpartition(":")
    if not host or not sep or not port.isdigit() or not 0 < int(port) < 65536 or args.keys < 1:
        ap.error("--addr must be host:port and --keys at least 1")

    failed = False
    rc = None

    def check(step, ok, got):
        nonlocal failed
        print(f"{'ok  ' if ok else 'FAIL'} {step}: {got}")
        failed |= not ok

    try:
        rc = RedisCluster(startup_nodes=[ClusterNode(host, int(port))], password=args.password,
                          decode_responses=True, socket_timeout=5)
        keys = [f"{args.prefix}:{i}" for i in range(args.keys)]
        for i, k in enumerate(keys):
            rc.set(k, f"{args.prefix}-value-{i}", ex=60)
        bad = [k for i, k in enumerate(keys) if rc.get(k) != f"{args.prefix}-value-{i}"]
        check(f"SET and GET of {len(keys)} keys", not bad, f"{len(bad)} wrong")
        ttl = rc.ttl(keys[0])
        check(f"TTL {keys[0]}", 0 < ttl <= 60, ttl)
        tagged = {f"{{{args.prefix}}}:a": "1", f"{{{args.prefix}}}:b": "2"}
        rc.mset(tagged)
        got = rc.mget(list(tagged))
        check("MSET and MGET of one {hash tag}", got == list(tagged.values()), got)
        deleted, left = rc.delete(keys[0]), rc.exists(keys[0])
        check(f"DEL {keys[0]}, then EXISTS", (deleted, left) == (1, 0), (deleted, left))
        masters = sorted(n.name for n in rc.get_primaries())
        print("masters " + " ".join(masters))
    except Exception as err:  # any failed command fails the example
        print(f"FAIL {type(err).__name__}: {err}")
        return 1
    finally:
        if rc is not None:
            rc.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
