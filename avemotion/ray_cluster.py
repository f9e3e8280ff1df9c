"""Starting or joining Ray, shared by the jobs that run on it (sweeps, extraction): a local
instance sized by ``num_cpus``, or a running cluster by address (``"auto"``,
``"ray://host:10001"``); one already running in this process is reused when it fits."""

from __future__ import annotations


def check_ray_in_process(address: str | None, num_cpus: int | None) -> None:
    """Refuse, in one line, an ``address`` or ``num_cpus`` when Ray already runs in this
    process: reusing it would ignore them (an address cannot be compared with it)."""
    import ray

    if not ray.is_initialized():
        return
    if address:
        raise ValueError(
            f"address={address!r}: Ray is already running in this process; "
            "shut it down first or leave --address out"
        )
    if num_cpus is None:
        return
    running = ray.cluster_resources().get("CPU", 0)
    if num_cpus != running:
        raise ValueError(
            f"num_cpus={num_cpus}: Ray is already running in this process with {running:g} "
            "CPUs; shut it down first or leave --num-cpus out"
        )


def connect_ray(address: str | None, num_cpus: int | None) -> bool:
    """Start or join Ray; one already running in this process is reused as it is, if it
    is what ``address`` and ``num_cpus`` ask for. Returns whether this call started or
    joined it (so the caller knows whether to shut it down)."""
    import ray

    check_ray_in_process(address, num_cpus)
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        # "local": a new instance, never one a `ray start` left running on the machine
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    return True
