"""``python -m ingest.readers.worker NAME LIMITS_JSON`` — read one file from stdin and write
``{"extract": …}`` or ``{"error": reason}`` as JSON to stdout. The process first limits
its own address space and CPU time (the parent also enforces a wall-clock timeout)."""

from __future__ import annotations

import json
import resource
import sys


def main() -> int:
    name, raw_limits = sys.argv[1], json.loads(sys.argv[2])
    mem = int(raw_limits["memory_mb"]) * 2**20
    cpu = int(float(raw_limits["seconds"])) + 1
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    data = sys.stdin.buffer.read()
    from ingest.readers import Limits, ReaderError, extract

    try:
        out = {"extract": extract(name, data, Limits(**raw_limits)).to_dict()}
    except ReaderError as e:
        out = {"error": str(e)}
    except MemoryError:
        out = {"error": f"needs more than {raw_limits['memory_mb']:,} MB of memory to read; the limit per file"}
    except Exception as e:  # noqa: BLE001 -- any failure on a hostile file is its reason
        out = {"error": f"could not be read ({type(e).__name__}: {' '.join(str(e).split())[:200]})"}
    sys.stdout.write(json.dumps(out, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
