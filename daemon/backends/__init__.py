"""Choose where Programmers run: `local` (the default) or `ray`, which is imported only when chosen."""

from __future__ import annotations

from pathlib import Path

from daemon.config import PoolConfig
from daemon.errors import ConfigError
from daemon.pool import Backend, LocalBackend, Pool


async def create(cfg: PoolConfig, worktrees_dir: Path, state_dir: Path) -> Backend:
    """The configured backend, connected; ConfigError or PasError says why it cannot be."""
    if cfg.backend == "local":
        return LocalBackend(worktrees_dir)
    import os

    from daemon.backends.ray_auth import auth_mode

    mode = auth_mode(cfg.address, cfg.insecure_local)  # refuse before anything reaches the network
    try:
        import ray  # noqa: F401
    except ImportError:
        raise ConfigError("pool.backend 'ray' needs Ray on this machine: pip install 'pasd[ray]'") from None
    from daemon.backends.ray import RayBackend

    os.environ["RAY_AUTH_MODE"] = mode  # Ray reads it from the environment only
    assert cfg.address is not None  # auth_mode refused a missing one
    return await RayBackend.connect(cfg.address, cfg.workers, cfg.slots, state_dir)


def attach(backend: Backend, pool: Pool) -> None:
    """Let a remote backend know its Programmers and report the node each runs on."""
    if backend.name == "ray":
        from daemon.backends.ray import RayBackend

        if isinstance(backend, RayBackend):
            backend.attach([prog.id for prog in pool.programmers], pool.place)
