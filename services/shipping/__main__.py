from shared.infra.runtime import serve

from services.shipping.app import build

serve(build())
