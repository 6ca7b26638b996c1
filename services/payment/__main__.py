from services.payment.app import build
from shared.infra.runtime import serve

serve(build())
