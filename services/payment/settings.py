from __future__ import annotations

from pydantic import SecretStr

from shared.infra.settings import GuardedSecret, ServiceSettings

# A fixed key so a developer machine needs no setup. DEV ONLY: anyone can read it here, so
# data sealed with it is not protected. Production sets PAYMENT_DATA_KEY (a Fernet key);
# the service logs a warning at start while this one is in use.
DEV_ONLY_PAYMENT_DATA_KEY = "jWLXWl2KjEzlOMdTKbGZY9ZPpdDdWa3ld9RFS5sOlfg="


class PaymentSettings(ServiceSettings):
    http_port: int = 8002
    # Where buyers send bank transfers (the platform's client-money account; sandbox values).
    beneficiary_name: str = "Escrow Platform Client Money (SANDBOX)"
    beneficiary_iban: str = "GB33BUKB20201555555555"
    beneficiary_bic: str = "BUKBGB22"
    beneficiary_bank_name: str = "Sandbox Bank plc"
    payment_data_key: SecretStr = SecretStr(DEV_ONLY_PAYMENT_DATA_KEY)
    instruction_sweep_seconds: float = 5.0

    def guarded_secrets(self) -> list[GuardedSecret]:
        return [*super().guarded_secrets(),
                GuardedSecret("PAYMENT_DATA_KEY", self.payment_data_key, DEV_ONLY_PAYMENT_DATA_KEY)]

    @property
    def uses_dev_data_key(self) -> bool:
        return self.payment_data_key.get_secret_value() == DEV_ONLY_PAYMENT_DATA_KEY
