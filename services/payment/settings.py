from __future__ import annotations

from pydantic import SecretStr

from shared.infra.settings import GuardedSecret, ServiceSettings

# A fixed key so a developer machine needs no setup. DEV ONLY: anyone can read it here, so
# data sealed with it is not protected. Production sets PAYMENT_DATA_KEY (a Fernet key);
# the service logs a warning at start while this one is in use.
DEV_ONLY_PAYMENT_DATA_KEY = "jWLXWl2KjEzlOMdTKbGZY9ZPpdDdWa3ld9RFS5sOlfg="

# The sandbox bank's signing key, for the same reason. DEV ONLY: production sets
# BANK_WEBHOOK_KEYS to the bank adapter's keys (``kid:secret,...``).
DEV_ONLY_BANK_WEBHOOK_KEYS = "sandbox:dev-only-bank-webhook-secret-0123456789abcdef"


class PaymentSettings(ServiceSettings):
    http_port: int = 8002
    # Where buyers send bank transfers (the platform's client-money account; sandbox values).
    beneficiary_name: str = "Escrow Platform Client Money (SANDBOX)"
    beneficiary_iban: str = "GB33BUKB20201555555555"
    beneficiary_bic: str = "BUKBGB22"
    beneficiary_bank_name: str = "Sandbox Bank plc"
    # Fernet key sealing bank details at rest.
    payment_data_key: SecretStr = SecretStr(DEV_ONLY_PAYMENT_DATA_KEY)
    # Keys the bank signs its transfer reports with.
    bank_webhook_keys: SecretStr = SecretStr(DEV_ONLY_BANK_WEBHOOK_KEYS)
    # Age beyond which a signed bank report is refused (replays).
    bank_webhook_tolerance_seconds: float = 300.0
    # How often pending payouts and refunds are sent to the provider.
    instruction_sweep_seconds: float = 5.0
    # Card captures the provider reports are checked against the ledger this often, over
    # this window (a capture whose booking was lost is booked or refunded).
    reconcile_seconds: float = 60.0
    reconcile_window_seconds: float = 7 * 24 * 3600

    @property
    def uses_dev_bank_keys(self) -> bool:
        return self.bank_webhook_keys.get_secret_value() == DEV_ONLY_BANK_WEBHOOK_KEYS

    def guarded_secrets(self) -> list[GuardedSecret]:
        return [*super().guarded_secrets(),
                GuardedSecret("PAYMENT_DATA_KEY", self.payment_data_key, DEV_ONLY_PAYMENT_DATA_KEY),
                GuardedSecret("BANK_WEBHOOK_KEYS", self.bank_webhook_keys, DEV_ONLY_BANK_WEBHOOK_KEYS)]

    @property
    def uses_dev_data_key(self) -> bool:
        return self.payment_data_key.get_secret_value() == DEV_ONLY_PAYMENT_DATA_KEY
