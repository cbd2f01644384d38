"""The sizing table of docs/sizing.md, computed from the figures bench/students_per_instance.py measured.

Run: .venv/bin/python -m bench.capacity.sizing --fixed-mib 182 --per-student-mib 40 --cores-per-student 0.003
     [--fixed-cores 0.01] [--host-mib 600] [--headroom 0.1] [--cpu-target 0.7]

Active students an instance type carries = the smaller of
- memory: (instance memory − host-mib (OS, Docker, EB and CloudWatch agents; assumed, not measured here) − the
  instance's fixed memory with no student) × (1 − headroom) / memory per student;
- CPU: (sustained vCPUs × cpu-target − fixed cores) / cores per active student, where a t3's sustained vCPUs are
  its baseline (what it can run all day without spending CPU credits; unlimited mode bills the rest).
"""

from __future__ import annotations

import argparse
import math

# vCPUs, memory (GiB) and, for burstable t3, the baseline share of each vCPU (AWS's published figures).
INSTANCE_TYPES = {
    "t3.small": (2, 2, 0.20),
    "t3.medium": (2, 4, 0.20),
    "t3.large": (2, 8, 0.30),
    "t3.xlarge": (4, 16, 0.40),
    "m6i.large": (2, 8, 1.0),
    "m6i.xlarge": (4, 16, 1.0),
}


def table(fixed_mib: float, per_student_mib: float, cores_per_student: float, fixed_cores: float,
          host_mib: float, headroom: float, cpu_target: float) -> list[str]:
    lines = ["| instance type | vCPU | memory GiB | sustained vCPU | students by memory | students by CPU | active students |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, (vcpu, gib, baseline) in INSTANCE_TYPES.items():
        sustained = vcpu * baseline
        by_memory = max(0, math.floor((gib * 1024 - host_mib - fixed_mib) * (1 - headroom) / per_student_mib))
        by_cpu = max(0, math.floor((sustained * cpu_target - fixed_cores) / cores_per_student))
        lines.append(f"| {name} | {vcpu} | {gib} | {sustained:g} | {by_memory} | {by_cpu} | **{min(by_memory, by_cpu)}** |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--fixed-mib", type=float, required=True, help="instance PSS with no student (measured)")
    parser.add_argument("--per-student-mib", type=float, required=True, help="PSS per active student (measured)")
    parser.add_argument("--cores-per-student", type=float, required=True, help="cores per active student (measured)")
    parser.add_argument("--fixed-cores", type=float, default=0.0, help="cores the idle instance uses")
    parser.add_argument("--host-mib", type=float, default=600, help="OS, Docker and agents (assumed)")
    parser.add_argument("--headroom", type=float, default=0.1, help="share of memory left free")
    parser.add_argument("--cpu-target", type=float, default=0.7, help="share of sustained vCPU to plan for")
    args = parser.parse_args()
    print("\n".join(table(args.fixed_mib, args.per_student_mib, args.cores_per_student, args.fixed_cores,
                          args.host_mib, args.headroom, args.cpu_target)))


if __name__ == "__main__":
    main()
