"""The emulator's state holder: configuration, store, key material, limiter, faults, switches and request log."""

from dataclasses import dataclass, field
from typing import Optional

from . import ca, ratelimit
from .faults import FaultRegistry
from .recorder import Recorder
from .store import Store
from .switches import Switches


@dataclass
class Config:
    state_path: Optional[str] = None          # SQLite file; in memory when None
    processing_delay: float = 1.0             # seconds until an enrollment is processed
    auth_processing_delay: float = 0.2        # seconds GET /auth/{ref} answers 100 before the final status
    access_token_ttl: int = 900               # seconds
    rate_limits: str = 'production'           # 'production' | 'off'
    record_dir: Optional[str] = None
    switches: dict = field(default_factory=dict)   # starting values of switches.DEFAULTS keys
    # Validity of issued KSeF certificates; shorter only for simulations of many lifetimes (tests/lifecycle).
    certificate_validity_days: float = ca.CERTIFICATE_VALIDITY.days


class Emulator:
    def __init__(self, config=None):
        self.config = config or Config()
        if self.config.rate_limits not in ('production', 'off'):
            raise ValueError("rate_limits must be 'production' or 'off'")
        if self.config.certificate_validity_days <= 0:
            raise ValueError('certificate_validity_days must be > 0')
        self.store = Store(self.config.state_path)
        self.keys = ca.KeyMaterial(self.store)
        self.limiter = ratelimit.RateLimiter(enabled=self.config.rate_limits == 'production')
        self.faults = FaultRegistry()
        self.switches = Switches(self.config.switches)
        self.recorder = Recorder(self.config.record_dir)

    def close(self):
        self.store.close()
