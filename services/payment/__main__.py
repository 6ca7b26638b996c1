from shared.infra.runtime import serve

from services.payment.app import build

serve(build())
